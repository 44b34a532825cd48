"""Deterministic data splits (numpy only)."""

from __future__ import annotations

import numpy as np

from baselines.typing import IntArray, NDArray


def stratified_holdout(labels: NDArray, fraction: float, seed: int) -> tuple[IntArray, IntArray]:
    """Split row positions into (kept, held-out), holding out ``fraction`` of every class.

    Parameters
    ----------
    labels
        One class label per row.
    fraction
        Share of each class to hold out, in (0, 1).
    seed
        Seed of the permutation; the same inputs always give the same split.

    Returns
    -------
    tuple of numpy.ndarray
        Sorted positions of the kept rows and of the held-out rows.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must be in (0, 1)")
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held: list[IntArray] = []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        idx = idx[rng.permutation(len(idx))]
        held.append(idx[: int(round(fraction * len(idx)))])
    out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(y)), out)
    return keep.astype(np.int64), out.astype(np.int64)


def stratified_folds(labels: NDArray, k: int, seed: int) -> IntArray:
    """Assign every row to one of ``k`` folds, each class spread evenly over the folds.

    Returns
    -------
    numpy.ndarray
        Fold index in ``0..k-1`` per row; the same inputs always give the same folds.
    """
    if k < 2:
        raise ValueError("k must be at least 2")
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=np.int64)
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        fold[idx[rng.permutation(len(idx))]] = np.arange(len(idx)) % k
    return fold


__all__ = ["stratified_folds", "stratified_holdout"]
