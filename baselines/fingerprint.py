"""Training-data fingerprint: sha256 over the exact training rows and the recipe."""

from __future__ import annotations

import hashlib

import pandas as pd


def frame_digest(frame: pd.DataFrame) -> str:
    """Return the sha256 of a frame's rows as CSV (column names, order and values are exact)."""
    payload = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    return hashlib.sha256(payload).hexdigest()


def training_fingerprint(frame: pd.DataFrame, recipe_json: str, *, plant: str | None = None) -> str:
    """Return ``sha256(recipe JSON, plant, rows)``: equal only for the same rows and recipe.

    Parameters
    ----------
    frame
        The raw rows the model is trained on, after contract quarantine, in training order.
    recipe_json
        Canonical recipe JSON (``Recipe.to_json()``), including any overrides in effect.
    plant
        The plant or subset the rows belong to, if any.
    """
    h = hashlib.sha256()
    h.update(b"millwright-fingerprint-v1\0")
    h.update(recipe_json.encode("utf-8"))
    h.update(b"\0")
    h.update((plant or "").encode("utf-8"))
    h.update(b"\0")
    h.update(frame_digest(frame).encode("ascii"))
    return h.hexdigest()


__all__ = ["frame_digest", "training_fingerprint"]
