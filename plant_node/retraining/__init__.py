"""Retraining at the plant: triggers over monitoring's records, and the active-learning queue."""
