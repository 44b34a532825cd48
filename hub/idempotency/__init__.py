"""Idempotency domain: replay of retried creates by Idempotency-Key."""
