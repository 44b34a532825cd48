"""Node liveness: which plants went silent beyond their timeout, announced once per episode."""
