"""Recipes domain: versioned training recipes, immutable once published."""
