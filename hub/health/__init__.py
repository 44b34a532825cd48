"""Health domain: liveness, readiness and Prometheus metrics."""
