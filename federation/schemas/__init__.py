"""Pydantic wire models for every HTTP payload that crosses the plant/hub boundary."""
