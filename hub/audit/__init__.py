"""Audit domain: the append-only, hash-chained trail every other domain appends to."""
