"""Drift thresholds that do not depend on the order the rows arrive in: a block bootstrap.

A chunk's drift score depends as much on *how* the rows were fed as on the process: 500
rows of 22 interleaved engines sit much closer to the reference than 500 rows of two engines
run one after another, or 500 consecutive parts of a line whose ambient temperature wanders.
Calibrating on one replay of the reference (its own chunks, in its own order) sets
thresholds that only hold for that order. Here the reference is resampled instead:

1. **Out of sample, stratified by unit.** The reference is split into two folds that share
   no unit (units dealt alternately), or, with fewer than four units, into alternating time
   blocks of one chunk each. Chunks of one fold are scored against the summaries of the
   other, so a threshold measures how far *new* units sit from the reference.
2. **Block bootstrap.** Each calibration chunk is assembled from contiguous blocks of the
   held-out fold (rows in unit, then time order): short blocks give a well-mixed chunk (an
   interleaved fleet), blocks of a whole chunk give a chunk of one or two units (units fed
   one after another), or one stretch of time. Block lengths are drawn per chunk from
   :data:`BLOCK_FRACTIONS`, so the upper tail of every score comes from the least mixed feed.
3. **Capped, and switched when a metric cannot discriminate.** Every threshold is capped
   inside its metric's range (Jensen-Shannon and Kolmogorov-Smirnov are at most 1). A feature
   whose preferred metric would need a threshold within :data:`HEADROOM` of its maximum is
   switched to the next metric that still has room (KS, then the Wasserstein distance, which
   is unbounded); :attr:`Calibration.live` records which metric is live per feature.
4. **Refused when too small.** Each fold must hold at least one chunk of rows, else
   :class:`ReferenceTooSmall` says how many rows are needed.

The bootstrap chunks also give the per-chunk mean of every feature (and of the prediction and
the multivariate error) under a stable process, which the sequential detectors
(:mod:`.detectors`) standardize by.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Largest value each drift metric can take (the Wasserstein distance is scaled by the
#: reference standard deviation and unbounded, as are PSI and the reconstruction error).
METRIC_MAX: dict[str, float] = {
    "js": 1.0,
    "ks": 1.0,
    "wasserstein": math.inf,
    "psi": math.inf,
    "reconstruction_error": math.inf,
}
#: Order in which a feature falls back when its preferred metric has no room left.
FALLBACK_METRICS: tuple[str, ...] = ("js", "ks", "wasserstein")
#: A bounded metric is live only if its threshold leaves this share of its range above it.
HEADROOM = 0.1
#: Block length per bootstrap chunk, as a share of the chunk size (drawn uniformly).
BLOCK_FRACTIONS: tuple[float, ...] = (0.04, 0.2, 1.0)
#: Fewest units for unit folds; with fewer, the reference is split in time blocks.
MIN_UNITS = 4


class ReferenceTooSmall(ValueError):
    """The reference period holds too few rows (or units) to calibrate drift thresholds."""


@dataclass(frozen=True)
class Band:
    """Distribution of one per-chunk score over the bootstrap chunks.

    Parameters
    ----------
    upper
        Threshold: the score a stable chunk should not exceed (capped to the metric's range).
    mean, std
        Mean and standard deviation of the score over the bootstrap chunks.
    worst
        Largest bootstrap score.
    """

    upper: float
    mean: float
    std: float
    worst: float


@dataclass(frozen=True)
class Calibration:
    """What the bootstrap found.

    Parameters
    ----------
    bands
        ``bands[column][metric]``; the multivariate error is under column ``"*"``.
    live
        The metric that raises drift, per feature (and for the prediction column).
    means
        ``means[column] = (mean, std, rho)``: mean and standard deviation of the chunk mean
        of each feature and of the prediction over the bootstrap chunks (std from the least
        mixed block length), and the lag-1 autocorrelation of the means of consecutive
        chunks of the folds in unit-then-time order (0 when too few chunks; clipped to
        [0, 0.9]), which the sequential detectors use to widen their limits. ``"*"`` holds
        the same for the multivariate reconstruction error.
    n_chunks
        Bootstrap chunks scored.
    folds
        ``"unit"`` or ``"time"``: how the reference was split.
    """

    bands: dict[str, dict[str, Band]]
    live: dict[str, str]
    means: dict[str, tuple[float, float, float]]
    n_chunks: int
    folds: str


def calibration_folds(
    reference: pd.DataFrame, *, unit: str | None, timestamp: str | None, chunk_size: int
) -> tuple[list[np.ndarray], str]:
    """Split the reference in two out-of-sample folds, each in unit-then-time order.

    Parameters
    ----------
    reference
        Reference rows.
    unit
        Unit-id column; used when the reference holds at least :data:`MIN_UNITS` units.
    timestamp
        Time column (row order when absent).
    chunk_size
        Rows per chunk (the length of a time block without units).

    Returns
    -------
    tuple[list[numpy.ndarray], str]
        Row positions of each fold, in the order blocks are drawn from, and ``"unit"`` or
        ``"time"``.

    Raises
    ------
    ReferenceTooSmall
        If a fold holds fewer than ``chunk_size`` rows.
    """
    n = len(reference)
    if timestamp is not None and timestamp in reference:
        order = np.argsort(reference[timestamp].to_numpy(), kind="stable")
    else:
        order = np.arange(n)
    if unit is not None and unit in reference and reference[unit].nunique() >= MIN_UNITS:
        codes = pd.factorize(reference[unit], sort=True)[0]
        kind = "unit"
        by_unit = order[np.argsort(codes[order], kind="stable")]  # unit, then time
        fold_of = codes[by_unit] % 2
        folds = [by_unit[fold_of == f] for f in (0, 1)]
    else:
        kind = "time"
        block = np.arange(n) // max(1, chunk_size)
        folds = [order[block % 2 == f] for f in (0, 1)]
    sizes = [len(f) for f in folds]
    if min(sizes) < chunk_size:
        raise ReferenceTooSmall(
            f"a reference of {n} rows is too small to calibrate drift on chunks of "
            f"{chunk_size} rows: each of its two out-of-sample folds (split by "
            f"{'unit' if kind == 'unit' else 'time block'}) needs at least {chunk_size} rows, "
            f"and they hold {sizes[0]} and {sizes[1]}. Collect at least {2 * chunk_size} "
            "reference rows (more units help), or monitor in smaller chunks."
        )
    return folds, kind


def bootstrap_chunks(
    sequence: np.ndarray,
    *,
    chunk_size: int,
    n_chunks: int,
    rng: np.random.Generator,
    block_fractions: Sequence[float] = BLOCK_FRACTIONS,
) -> list[tuple[float, np.ndarray]]:
    """Draw chunks of ``chunk_size`` rows as runs of contiguous blocks of ``sequence``.

    Parameters
    ----------
    sequence
        Row positions in the order blocks are cut from (unit, then time).
    chunk_size
        Rows per chunk.
    n_chunks
        Chunks to draw.
    rng
        Random generator (the caller seeds it: calibration is reproducible).
    block_fractions
        Block lengths as shares of ``chunk_size``; each chunk uses one, drawn uniformly.

    Returns
    -------
    list[tuple[float, numpy.ndarray]]
        ``(block fraction, row positions)`` per chunk.
    """
    n = len(sequence)
    out = []
    for _ in range(n_chunks):
        frac = float(block_fractions[int(rng.integers(len(block_fractions)))])
        length = max(1, min(n, round(frac * chunk_size)))
        parts, have = [], 0
        while have < chunk_size:
            start = int(rng.integers(0, n - length + 1))
            take = min(length, chunk_size - have)
            parts.append(sequence[start : start + take])
            have += take
        out.append((frac, np.concatenate(parts)))
    return out


def _band(values: Sequence[float], *, metric: str, k: float) -> Band:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Band(upper=math.inf, mean=math.nan, std=0.0, worst=math.nan)
    mean, std = float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
    upper = max(mean + k * std, float(v.max()))
    return Band(upper=min(upper, METRIC_MAX.get(metric, math.inf)), mean=mean, std=std,
                worst=float(v.max()))  # fmt: skip


def has_room(band: Band, metric: str) -> bool:
    """Return whether a score can still rise above ``band.upper`` inside its metric's range."""
    top = METRIC_MAX.get(metric, math.inf)
    return math.isfinite(band.upper) and (
        not math.isfinite(top) or band.upper <= (1 - HEADROOM) * top
    )


def live_metric(bands: Mapping[str, Band], preferred: str) -> str:
    """Return the first metric (preferred, then :data:`FALLBACK_METRICS`) that has room."""
    order = [preferred, *(m for m in FALLBACK_METRICS if m != preferred)]
    for metric in order:
        band = bands.get(metric)
        if band is not None and has_room(band, metric):
            return metric
    return "wasserstein"


#: Scores one chunk, given as row positions of the reference:
#: ``(feature scores, prediction scores, multivariate error)``.
ChunkScorer = Callable[[np.ndarray], tuple[dict[str, dict[str, float]], dict[str, float], float]]


def calibrate(
    reference: pd.DataFrame,
    *,
    scorers: Sequence[ChunkScorer],
    folds: Sequence[np.ndarray],
    kind: str,
    features: Sequence[str],
    prediction: str | None,
    chunk_size: int,
    k: float,
    mean_columns: Sequence[str] = (),
    log_means: Sequence[str] = (),
    preferred_metric: str = "js",
    n_chunks: int = 150,
    seed: int = 0,
) -> Calibration:
    """Score bootstrap chunks of each fold with the other fold's scorer and set the bands.

    Parameters
    ----------
    reference
        Reference rows.
    scorers
        ``scorers[i]`` scores a chunk against summaries fitted on every fold but ``i``.
    folds, kind
        From :func:`calibration_folds`.
    features
        Monitored features.
    prediction
        Model output column, or ``None``.
    mean_columns
        Further columns whose chunk mean is tracked (e.g. per-feature residuals).
    log_means
        Columns (positive, right-skewed: a loss) whose chunk mean is tracked on a log scale,
        where a chunk-to-chunk spread is closer to normal and a change is a ratio.
    chunk_size
        Rows per chunk.
    k
        Band width in bootstrap standard deviations (never below the worst bootstrap chunk).
    preferred_metric
        The metric that raises feature drift where it has room.
    n_chunks
        Bootstrap chunks per fold.
    seed
        Seed of the bootstrap.

    Returns
    -------
    Calibration
        Bands, live metric per feature, and chunk-mean statistics.
    """
    rng = np.random.default_rng(seed)
    scores: dict[str, dict[str, list[float]]] = {}
    means: dict[str, dict[float, list[float]]] = {}
    columns = [*features, *([prediction] if prediction else []), *mean_columns]
    values = reference[columns].to_numpy(dtype=np.float64)
    total = 0
    for fold, scorer in zip(folds, scorers, strict=True):
        for frac, rows in bootstrap_chunks(fold, chunk_size=chunk_size, n_chunks=n_chunks, rng=rng):
            total += 1
            feats, pred, multi = scorer(rows)
            for name, per_metric in feats.items():
                for m, v in per_metric.items():
                    scores.setdefault(name, {}).setdefault(m, []).append(v)
            for m, v in pred.items():
                scores.setdefault(prediction or "", {}).setdefault(m, []).append(v)
            scores.setdefault("*", {}).setdefault("reconstruction_error", []).append(multi)
            means.setdefault("*", {}).setdefault(frac, []).append(multi)
            with np.errstate(all="ignore"):
                chunk_means = np.nanmean(values[rows], axis=0)
            for name, v in zip(columns, chunk_means, strict=True):
                if name in log_means:
                    v = log_mean(float(v))
                means.setdefault(name, {}).setdefault(frac, []).append(float(v))
    rho = _lag1(values, folds, chunk_size)
    multi_rho = _lag1_scores(folds, scorers, chunk_size)
    bands = {
        col: {m: _band(v, metric=m, k=k) for m, v in per_metric.items()}
        for col, per_metric in scores.items()
    }
    scored = [*features, *([prediction] if prediction else [])]
    live = {name: live_metric(bands.get(name, {}), preferred_metric) for name in scored}
    return Calibration(
        bands=bands,
        live=live,
        means={
            **{
                name: (*_mean_stats(means.get(name, {})), rho.get(i, 0.0))
                for i, name in enumerate(columns)
            },
            # the multivariate error, spread from the least mixed block length like the rest
            "*": (*_mean_stats(means.get("*", {})), multi_rho),
        },
        n_chunks=total,
        folds=kind,
    )


#: Floor of a chunk mean before its log (a chunk of perfect predictions scores 0).
LOG_FLOOR = 1e-12


def log_mean(value: float) -> float:
    """Return ``log(value)`` of a non-negative chunk mean (floored; NaN stays NaN)."""
    return math.log(max(value, LOG_FLOOR)) if math.isfinite(value) else math.nan


def _lag1(values: np.ndarray, folds: Sequence[np.ndarray], chunk_size: int) -> dict[int, float]:
    """Lag-1 autocorrelation of consecutive chunk means per column (pooled over folds)."""
    series = []
    for fold in folds:
        n = len(fold) // chunk_size
        if n >= 3:
            with np.errstate(all="ignore"):
                m = np.nanmean(values[fold[: n * chunk_size]].reshape(n, chunk_size, -1), axis=1)
            series.append(m - np.nanmean(m, axis=0))
    if sum(len(s) for s in series) < 6:
        return {}
    num = sum(np.nansum(s[1:] * s[:-1], axis=0) for s in series)
    den = sum(np.nansum(s * s, axis=0) for s in series)
    with np.errstate(all="ignore"):
        r = np.where(den > 0, num / den, 0.0)
    return {i: float(np.clip(v, 0.0, 0.9)) for i, v in enumerate(r) if np.isfinite(v)}


def _lag1_scores(
    folds: Sequence[np.ndarray], scorers: Sequence[ChunkScorer], chunk_size: int
) -> float:
    """Lag-1 autocorrelation of the multivariate error of consecutive chunks of the folds."""
    num = den = 0.0
    count = 0
    for fold, scorer in zip(folds, scorers, strict=True):
        n = len(fold) // chunk_size
        if n < 3:
            continue
        errs = np.array([scorer(fold[i * chunk_size : (i + 1) * chunk_size])[2] for i in range(n)])
        errs = errs[np.isfinite(errs)] - np.nanmean(errs)
        num += float(np.sum(errs[1:] * errs[:-1]))
        den += float(np.sum(errs * errs))
        count += len(errs)
    if count < 6 or den <= 0:
        return 0.0
    return float(np.clip(num / den, 0.0, 0.9))


def _mean_stats(per_fraction: Mapping[float, list[float]]) -> tuple[float, float]:
    """Mean of the chunk means, and their largest standard deviation over block lengths."""
    every = np.asarray([v for vs in per_fraction.values() for v in vs], dtype=np.float64)
    every = every[np.isfinite(every)]
    if every.size == 0:
        return math.nan, 0.0
    stds = []
    for vs in per_fraction.values():
        arr = np.asarray(vs, dtype=np.float64)
        arr = arr[np.isfinite(arr)]
        if arr.size > 1:
            stds.append(float(arr.std(ddof=1)))
    return float(every.mean()), max(stds, default=0.0)


__all__ = [
    "BLOCK_FRACTIONS",
    "FALLBACK_METRICS",
    "METRIC_MAX",
    "Band",
    "Calibration",
    "ReferenceTooSmall",
    "bootstrap_chunks",
    "calibrate",
    "calibration_folds",
    "has_room",
    "live_metric",
    "log_mean",
]
