"""Node API keys: who may call the plant node, stored only as sha256 hashes."""
