"""Evaluation metrics in numpy (RUL: RMSE, PHM08 score; failure: F1, PR-AUC, ECE)."""

from __future__ import annotations

import numpy as np

from baselines.typing import NDArray


def rmse(y_true: NDArray, y_pred: NDArray) -> float:
    """Root mean squared error."""
    d = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return float(np.sqrt(np.mean(d**2))) if d.size else float("nan")


def mae(y_true: NDArray, y_pred: NDArray) -> float:
    """Mean absolute error."""
    d = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return float(np.mean(np.abs(d))) if d.size else float("nan")


def phm08_score(y_true: NDArray, y_pred: NDArray) -> float:
    """PHM08 asymmetric score: late predictions (d = pred - true > 0) cost more than early ones.

    ``sum(exp(-d/13) - 1)`` for ``d < 0`` plus ``sum(exp(d/10) - 1)`` for ``d >= 0``.
    """
    d = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return float(np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0).sum())


def binary_counts(y_true: NDArray, y_hat: NDArray) -> tuple[int, int, int]:
    """Return true positives, false positives and false negatives."""
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_hat).astype(bool)
    return int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum())


def f1_score(y_true: NDArray, y_hat: NDArray) -> float:
    """F1 of the positive class (0 when there are no positives predicted or present)."""
    tp, fp, fn = binary_counts(y_true, y_hat)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def precision_recall(y_true: NDArray, y_hat: NDArray) -> tuple[float, float]:
    """Precision and recall of the positive class."""
    tp, fp, fn = binary_counts(y_true, y_hat)
    return (tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0)


def pr_auc(y_true: NDArray, score: NDArray) -> float:
    """Area under the precision-recall curve as average precision (step-wise, like scikit-learn)."""
    t = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    if not t.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    t, s = t[order], s[order]
    # One point per distinct score threshold.
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(t)[last]
    fps = (last + 1) - tps
    precision = tps / (tps + fps)
    recall = tps / t.sum()
    recall_prev = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - recall_prev) * precision))


def best_f1_threshold(y_true: NDArray, score: NDArray) -> float:
    """Return the score threshold (predict positive when ``score >= t``) that maximizes F1."""
    t = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    if not t.any():
        return 0.5
    order = np.argsort(-s, kind="mergesort")
    ts, ss = t[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]
    tps = np.cumsum(ts)[last]
    fps = (last + 1) - tps
    fns = t.sum() - tps
    f1 = 2 * tps / (2 * tps + fps + fns)
    k = int(np.argmax(f1))
    # Midway to the next lower score, so small numeric drift (e.g. INT8) does not flip the edge.
    upper = ss[last[k]]
    lower = ss[last[k + 1]] if k + 1 < len(last) else upper
    return float((upper + lower) / 2.0)


def expected_calibration_error(y_true: NDArray, prob: NDArray, n_bins: int = 15) -> float:
    """Return the expected calibration error over equal-width bins (weighted by bin size)."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(prob, dtype=np.float64)
    if not p.size:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(p[m].mean() - t[m].mean())
    return float(ece)


__all__ = [
    "best_f1_threshold",
    "binary_counts",
    "expected_calibration_error",
    "f1_score",
    "mae",
    "phm08_score",
    "pr_auc",
    "precision_recall",
    "rmse",
]
