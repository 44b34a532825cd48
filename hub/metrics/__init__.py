"""Metrics domain: the cross-plant registry of anonymized monitoring reports."""
