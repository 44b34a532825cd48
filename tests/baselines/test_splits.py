"""Deterministic stratified splits."""

import numpy as np
import pytest

from baselines.splits import stratified_folds


def test_stratified_folds_spread_every_class_evenly_and_repeat() -> None:
    y = np.r_[np.zeros(997, dtype=int), np.ones(33, dtype=int)]
    fold = stratified_folds(y, 5, seed=3)
    assert set(fold.tolist()) == {0, 1, 2, 3, 4}
    positives = np.bincount(fold[y == 1], minlength=5)
    assert positives.max() - positives.min() <= 1  # 33 failures: 7, 7, 7, 6, 6
    assert np.bincount(fold, minlength=5).max() - np.bincount(fold, minlength=5).min() <= 2
    assert np.array_equal(fold, stratified_folds(y, 5, seed=3))
    assert not np.array_equal(fold, stratified_folds(y, 5, seed=4))
    with pytest.raises(ValueError):
        stratified_folds(y, 1, seed=3)
