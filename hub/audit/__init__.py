"""Audit trail (placeholder until branch gov-audit lands: take theirs on merge)."""
