"""Liveness and readiness of the node."""
