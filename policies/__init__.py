"""Governance policy documents and their evaluator (imports nothing of Millwright's)."""
