"""Governance: published policies, promotion gates on evidence, four-eyes e-signed approvals."""
