"""Retraining: plants request it with evidence, the hub decides by policy and records why."""
