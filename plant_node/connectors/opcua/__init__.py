"""OPC UA connector (asyncua client, data-change subscriptions, secure channels)."""
