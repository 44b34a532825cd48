"""Univariate, multivariate and prediction drift against a reference period, in bounded memory.

:func:`fit_drift_reference` reads the reference period once and keeps only summaries: per
feature, quantile bin edges with the reference share in each bin, a capped sorted sample
(evenly spaced quantiles), mean and standard deviation; for the multivariate check, a PCA
basis. It then scores each reference chunk against those summaries and sets every
threshold from the spread of those chunk scores (mean + ``k`` sigma, never below the worst
reference chunk), so a threshold means "worse than the reference ever was".
:func:`score_chunk` compares one analysis chunk with the summaries. The reference
serializes to plain JSON (:meth:`DriftReference.to_dict`).

Metrics, per feature and for the prediction column:

- ``js``: Jensen-Shannon distance (base 2, in [0, 1]) between binned distributions;
- ``ks``: two-sample Kolmogorov-Smirnov statistic against the reference sample;
- ``wasserstein``: earth mover's distance divided by the reference standard deviation;
- ``psi``: population stability index over the reference quantile bins, with epsilon
  smoothing of empty bins (nannyml has no PSI, so it is computed here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from plant_node.monitoring.calibration import calibrate, calibration_folds
from plant_node.monitoring.chunking import CHUNK_COLUMN, FloatArray

UNIVARIATE_METRICS: tuple[str, ...] = ("js", "ks", "wasserstein", "psi")
MULTIVARIATE_METRIC = "reconstruction_error"
PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class ColumnReference:
    """Summary of one reference column: enough to score drift without the raw rows.

    Parameters
    ----------
    name
        Column name.
    edges
        Interior bin edges (reference quantiles, de-duplicated); ``len(edges) + 1`` bins.
    proportions
        Reference share of rows in each bin.
    sample
        Sorted reference quantiles at evenly spaced probabilities (the capped sample).
    mean, std, minimum, maximum
        Reference moments and range (NaNs ignored).
    count
        Non-null reference rows.
    """

    name: str
    edges: list[float]
    proportions: list[float]
    sample: list[float]
    mean: float
    std: float
    minimum: float
    maximum: float
    count: int

    @cached_property
    def arrays(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Return ``(edges, proportions, sample)`` as arrays, converted once per reference."""
        return (
            np.asarray(self.edges, dtype=np.float64),
            np.asarray(self.proportions, dtype=np.float64),
            np.asarray(self.sample, dtype=np.float64),
        )


@dataclass(frozen=True)
class PCAReference:
    """A PCA basis fitted on the standardized reference features.

    Parameters
    ----------
    columns
        Feature order of the basis.
    center, scale
        Standardization (reference mean and standard deviation; 1 where constant).
    components
        Retained principal axes, shape ``(k, len(columns))``.
    """

    columns: list[str]
    center: list[float]
    scale: list[float]
    components: list[list[float]]


@dataclass(frozen=True)
class ResidualReference:
    """Each feature predicted linearly from the others, on standardized reference features.

    A fault of one sensor (an offset, a slow drift, a change of unit) moves that sensor's
    residual by the size of the fault, while what moves every sensor together (which units
    a chunk holds, their wear, the weather) is largely explained by the other sensors, so
    the residual's chunk mean varies far less between stable chunks than the raw mean.

    Parameters
    ----------
    columns
        Features, in the order of the weights.
    center, scale
        Standardization (reference mean and standard deviation).
    weights
        ``weights[i][j]``: weight of standardized feature ``j`` in the prediction of ``i``
        (zero diagonal; ridge regression on the reference).
    """

    columns: list[str]
    center: list[float]
    scale: list[float]
    weights: list[list[float]]

    def residuals(self, x: FloatArray) -> FloatArray:
        """Return the standardized residual of every feature for rows ``x`` (same columns)."""
        z = (x - np.asarray(self.center)) / np.asarray(self.scale)
        z = np.where(np.isfinite(z), z, 0.0)
        out: FloatArray = z - z @ np.asarray(self.weights).T
        return out


#: Prefix of residual columns in :attr:`DriftReference.chunk_means` and the detectors.
RESIDUAL_PREFIX = "residual:"


def fit_residuals(
    frame: pd.DataFrame, columns: list[str], *, ridge: float = 1e-2
) -> ResidualReference | None:
    """Fit one ridge regression per feature on the others (``None`` under two features)."""
    x = frame[columns].to_numpy(dtype=np.float64)
    center, scale = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
    keep = scale > 0
    if keep.sum() < 2:
        return None
    cols = [c for c, k in zip(columns, keep, strict=True) if k]
    z = (x[:, keep] - center[keep]) / scale[keep]
    z = np.where(np.isfinite(z), z, 0.0)
    n, m = z.shape
    gram = z.T @ z / max(1, n)
    weights = np.zeros((m, m))
    for i in range(m):
        others = [j for j in range(m) if j != i]
        a = gram[np.ix_(others, others)] + ridge * np.eye(m - 1)
        weights[i, others] = np.linalg.solve(a, gram[others, i])
    return ResidualReference(
        columns=cols,
        center=center[keep].tolist(),
        scale=scale[keep].tolist(),
        weights=weights.tolist(),
    )


@dataclass(frozen=True)
class Threshold:
    """Alert band of one drift score, calibrated on reference chunks.

    Parameters
    ----------
    upper
        A chunk scoring above this is drifted.
    reference_mean, reference_std
        Mean and standard deviation of the score over the reference chunks.
    """

    upper: float
    reference_mean: float
    reference_std: float


@dataclass(frozen=True)
class DriftReference:
    """Everything :func:`score_chunk` needs, fitted once on the reference period.

    Parameters
    ----------
    features
        One summary per monitored feature.
    prediction
        Summary of the model output column (``None`` when not monitored).
    pca
        The multivariate basis (``None`` with fewer than two usable features).
    thresholds
        ``thresholds[column][metric]``; the multivariate score is under column ``"*"``.
    live
        The metric that raises feature drift, per feature (see :mod:`.calibration`): the
        preferred one where its threshold leaves room below the metric's maximum.
    chunk_means
        ``[mean, std, rho]`` of each column's per-chunk mean over the bootstrap chunks (and
        ``"*"``: of the multivariate error), what the sequential detectors standardize by
        (see :attr:`.calibration.Calibration.means`).
    calibration
        How the thresholds were calibrated (bootstrap chunks, fold kind).
    residuals
        Each feature regressed on the others (``None`` under two features): the
        sequential detectors also watch each feature's residual mean.
    """

    features: dict[str, ColumnReference]
    prediction: ColumnReference | None
    pca: PCAReference | None
    thresholds: dict[str, dict[str, Threshold]] = field(default_factory=dict)
    live: dict[str, str] = field(default_factory=dict)
    chunk_means: dict[str, list[float]] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    residuals: ResidualReference | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable form (see :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReference:
        """Rebuild a reference from :meth:`to_dict` output."""
        prediction = data.get("prediction")
        pca = data.get("pca")
        residuals = data.get("residuals")
        return cls(
            features={k: ColumnReference(**v) for k, v in data["features"].items()},
            prediction=ColumnReference(**prediction) if prediction else None,
            pca=PCAReference(**pca) if pca else None,
            thresholds={
                col: {m: Threshold(**t) for m, t in metrics.items()}
                for col, metrics in data.get("thresholds", {}).items()
            },
            live=dict(data.get("live", {})),
            chunk_means={k: list(v) for k, v in data.get("chunk_means", {}).items()},
            calibration=dict(data.get("calibration", {})),
            residuals=ResidualReference(**residuals) if residuals else None,
        )

    def live_metric(self, feature: str, default: str = "js") -> str:
        """Return the metric that raises drift on ``feature`` (``default`` if not calibrated)."""
        live: dict[str, str] = getattr(self, "live", None) or {}
        return live.get(feature, default)


@dataclass(frozen=True)
class ChunkDrift:
    """Drift scores of one chunk.

    Parameters
    ----------
    chunk
        Chunk index.
    n_rows
        Rows in the chunk.
    features
        ``features[name][metric]`` scores.
    prediction
        Scores of the model output column (empty when not monitored).
    multivariate
        Mean PCA reconstruction error (NaN when not monitored).
    drifted
        ``(column, metric)`` pairs whose score exceeds its threshold.
    """

    chunk: int
    n_rows: int
    features: dict[str, dict[str, float]]
    prediction: dict[str, float]
    multivariate: float
    drifted: list[tuple[str, str]]

    def excess(self, reference: DriftReference, metric: str | None = None) -> dict[str, float]:
        """Return each feature's score divided by its threshold, highest first.

        ``metric=None`` reads each feature's live metric (:attr:`DriftReference.live`).
        """
        ratios = {}
        for name, scores in self.features.items():
            m = metric or reference.live_metric(name)
            thr = reference.thresholds.get(name, {}).get(m)
            if thr is not None and thr.upper > 0 and np.isfinite(scores.get(m, np.nan)):
                ratios[name] = scores[m] / thr.upper
        return dict(sorted(ratios.items(), key=lambda kv: -kv[1]))


def _finite(values: Iterable[float] | pd.Series | FloatArray) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def summarize_column(
    name: str, values: pd.Series | FloatArray, *, n_bins: int = 10, sample_size: int = 1000
) -> ColumnReference:
    """Summarize one reference column into bins and a capped sorted sample.

    Parameters
    ----------
    name
        Column name.
    values
        Reference values (NaNs are ignored).
    n_bins
        Target number of quantile bins; ties in discrete data merge some of them.
    sample_size
        Cap on the stored sorted sample (evenly spaced quantiles beyond the cap).

    Returns
    -------
    ColumnReference
        The summary.

    Raises
    ------
    ValueError
        If the column has no finite value.
    """
    x = np.sort(_finite(values))
    if x.size == 0:
        raise ValueError(f"reference column {name!r} has no finite values")
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1)
    if x.size > sample_size:
        sample = np.quantile(x, (np.arange(sample_size) + 0.5) / sample_size)
    else:
        sample = x
    return ColumnReference(
        name=name,
        edges=edges.tolist(),
        proportions=(counts / x.size).tolist(),
        sample=sample.tolist(),
        mean=float(x.mean()),
        std=float(x.std()),
        minimum=float(x[0]),
        maximum=float(x[-1]),
        count=int(x.size),
    )


def psi(reference: FloatArray, analysis: FloatArray, *, epsilon: float = PSI_EPSILON) -> float:
    """Compute the population stability index of two binned distributions.

    Parameters
    ----------
    reference, analysis
        Bin proportions (or counts) over the same bins.
    epsilon
        Added to every bin before renormalizing, so an empty bin does not give infinity.

    Returns
    -------
    float
        ``sum((a - r) * ln(a / r))``; 0 for identical distributions.
    """
    r = np.asarray(reference, dtype=np.float64)
    a = np.asarray(analysis, dtype=np.float64)
    r = (r / r.sum() + epsilon) / (1 + epsilon * r.size)
    a = (a / a.sum() + epsilon) / (1 + epsilon * a.size)
    return float(np.sum((a - r) * np.log(a / r)))


def ks_statistic(reference_sorted: FloatArray, analysis: FloatArray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (sup of the CDF gap), ties handled exactly."""
    return _cdf_distances(reference_sorted, np.sort(analysis))[0]


def _cdf_distances(ref_sorted: FloatArray, ana_sorted: FloatArray) -> tuple[float, float]:
    """Return the KS statistic and the Wasserstein-1 distance of two sorted samples."""
    grid = np.sort(np.concatenate([ref_sorted, ana_sorted]))
    f_ref = np.searchsorted(ref_sorted, grid, side="right") / ref_sorted.size
    f_ana = np.searchsorted(ana_sorted, grid, side="right") / ana_sorted.size
    gap = np.abs(f_ref - f_ana)
    # between consecutive grid points both CDFs are flat: W1 = integral of the CDF gap
    return float(gap.max()), float(np.sum(gap[:-1] * np.diff(grid)))


def jensen_shannon(p: FloatArray, q: FloatArray) -> float:
    """Jensen-Shannon distance (base 2) of two discrete distributions given as proportions."""
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(np.sqrt(max(0.0, (kl_p + kl_q) / 2)))


def score_column(reference: ColumnReference, values: pd.Series | FloatArray) -> dict[str, float]:
    """Score one analysis column against its reference summary on every univariate metric.

    Returns NaN scores when the chunk has no finite value (integrity reports the nulls).
    """
    x = _finite(values)
    if x.size == 0:
        return {m: float("nan") for m in UNIVARIATE_METRICS}
    edges, ref_p, sample = reference.arrays
    ana_counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=ref_p.size)
    ana_p = ana_counts / x.size
    scale = reference.std if reference.std > 0 else 1.0
    ks, w1 = _cdf_distances(sample, np.sort(x))
    return {
        "js": jensen_shannon(ref_p, ana_p),
        "ks": ks,
        "wasserstein": w1 / scale,
        "psi": psi(ref_p, ana_p),
    }


def fit_pca(
    frame: pd.DataFrame,
    columns: list[str],
    *,
    variance: float = 0.65,
    n_components: int | None = None,
) -> PCAReference | None:
    """Fit the PCA basis on standardized reference features (nannyml keeps 65 % variance).

    ``n_components`` fixes the number of axes instead (calibration folds keep as many as
    the whole reference's basis, so their reconstruction error has the same scale).
    Returns ``None`` when fewer than two non-constant features are available.
    """
    x = frame[columns].to_numpy(dtype=np.float64)
    center = np.nanmean(x, axis=0)
    scale = np.nanstd(x, axis=0)
    keep = scale > 0
    if keep.sum() < 2:
        return None
    cols = [c for c, k in zip(columns, keep, strict=True) if k]
    z = (x[:, keep] - center[keep]) / scale[keep]
    z = np.where(np.isfinite(z), z, 0.0)
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    explained = np.cumsum(s**2) / np.sum(s**2)
    k = int(np.searchsorted(explained, variance) + 1) if n_components is None else n_components
    k = max(1, min(k, len(cols) - 1))
    return PCAReference(
        columns=cols,
        center=center[keep].tolist(),
        scale=scale[keep].tolist(),
        components=vt[:k].tolist(),
    )


def reconstruction_error(pca: PCAReference, frame: pd.DataFrame) -> float:
    """Mean Euclidean distance between standardized rows and their PCA reconstruction.

    Missing values are imputed with the reference mean (a zero after standardizing).
    """
    return _reconstruction_error(pca, frame[pca.columns].to_numpy(dtype=np.float64))


def _reconstruction_error(pca: PCAReference, x: FloatArray) -> float:
    z = (x - np.asarray(pca.center)) / np.asarray(pca.scale)
    z = np.where(np.isfinite(z), z, 0.0)
    v = np.asarray(pca.components)
    recon = (z @ v.T) @ v
    return float(np.mean(np.linalg.norm(z - recon, axis=1)))


def _scores(
    columns: Mapping[str, ColumnReference],
    prediction: ColumnReference | None,
    pca: PCAReference | None,
    rows: pd.DataFrame,
) -> tuple[dict[str, dict[str, float]], dict[str, float], float]:
    x = rows[list(columns)].to_numpy(dtype=np.float64)
    feats = {name: score_column(ref, x[:, i]) for i, (name, ref) in enumerate(columns.items())}
    pred = score_column(prediction, rows[prediction.name]) if prediction else {}
    multi = reconstruction_error(pca, rows) if pca else float("nan")
    return feats, pred, multi


def _array_scorer(
    columns: Mapping[str, ColumnReference],
    prediction: ColumnReference | None,
    pca: PCAReference | None,
    frame: pd.DataFrame,
) -> Any:
    """Score chunks given as row positions of ``frame`` (no pandas indexing per chunk)."""
    x = frame[list(columns)].to_numpy(dtype=np.float64)
    p = frame[prediction.name].to_numpy(dtype=np.float64) if prediction else None
    pos = {c: i for i, c in enumerate(columns)}
    pca_cols = [pos[c] for c in pca.columns] if pca else []

    def score(rows: np.ndarray) -> tuple[dict[str, dict[str, float]], dict[str, float], float]:
        chunk = x[rows]
        feats = {n: score_column(ref, chunk[:, i]) for i, (n, ref) in enumerate(columns.items())}
        pred = score_column(prediction, p[rows]) if prediction and p is not None else {}
        multi = _reconstruction_error(pca, chunk[:, pca_cols]) if pca else float("nan")
        return feats, pred, multi

    return score


def _summaries(
    frame: pd.DataFrame,
    names: list[str],
    prediction: str | None,
    *,
    n_bins: int,
    sample_size: int,
    pca_variance: float,
    pca_components: int | None = None,
) -> tuple[dict[str, ColumnReference], ColumnReference | None, PCAReference | None]:
    columns = {
        n: summarize_column(n, frame[n], n_bins=n_bins, sample_size=sample_size) for n in names
    }
    pred = (
        summarize_column(prediction, frame[prediction], n_bins=n_bins, sample_size=sample_size)
        if prediction
        else None
    )
    pca = fit_pca(frame, names, variance=pca_variance, n_components=pca_components)
    return columns, pred, pca


def fit_drift_reference(
    reference: pd.DataFrame,
    *,
    features: Iterable[str],
    prediction: str | None = None,
    unit: str | None = None,
    timestamp: str | None = "timestamp",
    chunk_size: int = 500,
    k: float = 4.0,
    alert_metric: str = "js",
    n_bins: int = 10,
    sample_size: int = 1000,
    pca_variance: float = 0.65,
    bootstrap_chunks: int = 150,
    seed: int = 0,
    extra_means: pd.DataFrame | None = None,
    log_means: Iterable[str] = (),
) -> DriftReference:
    """Summarize the reference period and calibrate every drift threshold by block bootstrap.

    The reference is split into two folds that share no unit (or, with fewer than four
    units, into alternating time blocks); bootstrap chunks of each fold, built from blocks
    of every length between a well-mixed fleet and one unit or time stretch, are scored
    against summaries of the other fold (:mod:`.calibration`). Each threshold is the mean
    of those scores plus ``k`` standard deviations, at least the worst bootstrap chunk, and
    capped inside the metric's range.

    Parameters
    ----------
    reference
        Reference rows (the model's known-good period).
    features
        Feature columns to monitor; constant columns are summarized but give no PCA axis.
    prediction
        Model output column, for prediction drift.
    unit
        Unit-id column, used to split the reference for calibration.
    timestamp
        Time column: order of rows inside a unit (or of time blocks).
    chunk_size
        Rows per calibration chunk; use the production chunk size.
    k
        Width of the band, in standard deviations of the bootstrap chunk scores. The
        default 4 (not 3) accounts for testing many features and metrics on every chunk.
    alert_metric
        Preferred metric for feature drift; a feature where it has no room falls back
        (:attr:`DriftReference.live`).
    n_bins, sample_size
        See :func:`summarize_column`.
    pca_variance
        Share of variance the PCA basis keeps.
    bootstrap_chunks
        Bootstrap chunks drawn per fold.
    seed
        Seed of the bootstrap (calibration is reproducible).
    extra_means
        Further per-row columns (same index as ``reference``) whose chunk mean the
        bootstrap also tracks in :attr:`DriftReference.chunk_means`, e.g. the model's
        per-row loss where labels are known (NaN elsewhere).
    log_means
        Columns of ``extra_means`` tracked on a log scale
        (:func:`.calibration.log_mean`).

    Returns
    -------
    DriftReference
        Summaries of the whole reference, and thresholds; holds no row of the reference.

    Raises
    ------
    plant_node.monitoring.calibration.ReferenceTooSmall
        If a fold holds less than one chunk of rows.
    """
    names = list(features)
    opts: dict[str, Any] = {
        "n_bins": n_bins,
        "sample_size": sample_size,
        "pca_variance": pca_variance,
    }
    folds, kind = calibration_folds(
        reference, unit=unit, timestamp=timestamp, chunk_size=chunk_size
    )
    columns, pred, pca = _summaries(reference, names, prediction, **opts)
    # a fold's basis keeps as many axes as the served one: with one axis more or less the
    # reconstruction error's level moves by more than its chunk-to-chunk spread
    fold_opts = {**opts, "pca_components": len(pca.components) if pca else None}

    def scorer(fit_rows: np.ndarray) -> Any:
        f_columns, f_pred, f_pca = _summaries(
            reference.iloc[fit_rows], names, prediction, **fold_opts
        )
        return _array_scorer(f_columns, f_pred, f_pca, reference)

    residuals = fit_residuals(reference, names)
    extra = None
    if residuals is not None:
        extra = pd.DataFrame(
            residuals.residuals(reference[residuals.columns].to_numpy(dtype=np.float64)),
            columns=[RESIDUAL_PREFIX + c for c in residuals.columns],
            index=reference.index,
        )
    extras = [e for e in (extra, extra_means) if e is not None]
    # chunks of fold i are scored against summaries of the other fold
    cal = calibrate(
        pd.concat([reference, *extras], axis=1) if extras else reference,
        mean_columns=[c for e in extras for c in e.columns],
        log_means=tuple(log_means),
        scorers=[scorer(folds[1]), scorer(folds[0])],
        folds=folds,
        kind=kind,
        features=names,
        prediction=prediction,
        chunk_size=chunk_size,
        k=k,
        preferred_metric=alert_metric,
        n_chunks=bootstrap_chunks,
        seed=seed,
    )
    thresholds = {
        col: {
            m: Threshold(upper=b.upper, reference_mean=b.mean, reference_std=b.std)
            for m, b in per_metric.items()
        }
        for col, per_metric in cal.bands.items()
    }
    chunk_means = {col: list(stats) for col, stats in cal.means.items()}
    return DriftReference(
        features=columns,
        prediction=pred,
        pca=pca,
        thresholds=thresholds,
        live=cal.live,
        chunk_means=chunk_means,
        calibration={"bootstrap_chunks": cal.n_chunks, "folds": cal.folds},
        residuals=residuals,
    )


def score_chunk(reference: DriftReference, rows: pd.DataFrame, *, chunk: int = 0) -> ChunkDrift:
    """Score one analysis chunk against the reference and flag scores above threshold.

    Parameters
    ----------
    reference
        From :func:`fit_drift_reference`.
    rows
        The chunk's log rows (must hold every monitored column).
    chunk
        Chunk index, carried into the result.

    Returns
    -------
    ChunkDrift
        Scores, and the ``(column, metric)`` pairs that crossed their threshold.
    """
    feats, pred, multi = _scores(reference.features, reference.prediction, reference.pca, rows)
    drifted: list[tuple[str, str]] = []
    named: list[tuple[str, dict[str, float]]] = list(feats.items())
    if reference.prediction:
        named.append((reference.prediction.name, pred))
    named.append(("*", {MULTIVARIATE_METRIC: multi}))
    for col, scores in named:
        for m, v in scores.items():
            thr = reference.thresholds.get(col, {}).get(m)
            if thr is not None and np.isfinite(v) and v > thr.upper:
                drifted.append((col, m))
    return ChunkDrift(
        chunk=chunk,
        n_rows=len(rows),
        features=feats,
        prediction=pred,
        multivariate=multi,
        drifted=drifted,
    )


def score_chunks(reference: DriftReference, frame: pd.DataFrame) -> list[ChunkDrift]:
    """Score every chunk of a frame numbered by :func:`.chunking.assign_chunks`."""
    return [
        score_chunk(reference, rows, chunk=int(key))
        for key, rows in frame.groupby(CHUNK_COLUMN, sort=True)
    ]
