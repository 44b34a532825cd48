"""Signed webhooks (Standard Webhooks) delivered through a durable outbox."""
