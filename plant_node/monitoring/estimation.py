"""Performance before labels arrive (nannyml CBPE / DLE) and realized performance once they do.

The classifier (AI4I failure probability) is watched with CBPE, which reads expected
ROC-AUC and F1 off calibrated probabilities; the regressor (C-MAPSS RUL) with DLE, which
learns on the reference period how large the model's error is for a given input and
prediction. Both are fitted once on a labelled reference period and applied to chunks of
the prediction log that carry the chunk numbers of :func:`.chunking.assign_chunks`, so every
monitoring layer reports on the same chunks.

This is the only module that imports nannyml. It turns telemetry off first, and nothing on
the serving path imports it.
"""

from __future__ import annotations

import math
import pickle
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from federation.offline import disable_telemetry
from plant_node.monitoring.chunking import CHUNK_COLUMN, LogColumns

disable_telemetry()  # before nannyml is imported: its usage logging reads the environment once

import nannyml as nml  # noqa: E402
from nannyml.chunk import Chunk, Chunker  # noqa: E402


class ProblemType(StrEnum):
    """The model family being watched."""

    CLASSIFICATION = "classification_binary"
    REGRESSION = "regression"


#: Metrics per problem type, and which way is bad.
DEFAULT_METRICS: dict[ProblemType, tuple[str, ...]] = {
    ProblemType.CLASSIFICATION: ("roc_auc", "f1"),
    ProblemType.REGRESSION: ("rmse", "mae"),
}


#: Half-width of the narrowest confidence band, in reference-chunk standard deviations of
#: the realized metric.
BAND_SIGMAS = 2.0
#: Range of each metric, to clip the band to.
_METRIC_RANGE: dict[str, tuple[float, float]] = {
    "roc_auc": (0.0, 1.0),
    "f1": (0.0, 1.0),
    "rmse": (0.0, math.inf),
    "mae": (0.0, math.inf),
}


class _ColumnChunker(Chunker):  # type: ignore[misc]
    """Chunks on Millwright's chunk column, so nannyml and our layers share boundaries."""

    def __init__(self, timestamp: str | None) -> None:
        super().__init__(timestamp_column_name=None)
        self._timestamp = timestamp

    def _split(self, data: pd.DataFrame) -> list[Chunk]:
        chunks = []
        for key, rows in data.groupby(CHUNK_COLUMN, sort=True):
            chunk = Chunk(key=str(int(key)), data=rows)
            if self._timestamp and self._timestamp in rows:
                ts = pd.to_datetime(rows[self._timestamp])
                chunk.start_datetime, chunk.end_datetime = ts.min(), ts.max()
            chunks.append(chunk)
        return chunks


@dataclass(frozen=True)
class ChunkPerformance:
    """Estimated (and, where labels exist, realized) performance of one chunk.

    Parameters
    ----------
    chunk
        Chunk index.
    metric
        Metric name (``roc_auc``, ``f1``, ``rmse``, ``mae``).
    estimated
        nannyml's estimate.
    lower, upper
        Confidence bounds of the estimate: nannyml's (estimate -/+ 3 sampling errors),
        widened to at least -/+ 2 standard deviations of the realized metric over the
        reference chunks (see :meth:`PerformanceEstimator.fit`).
    realized
        Metric on the labelled rows of the chunk, ``None`` without enough labels.
    n_labels
        Labelled rows in the chunk.
    """

    chunk: int
    metric: str
    estimated: float
    lower: float
    upper: float
    realized: float | None
    n_labels: int


def realized_metric(
    metric: str, y_true: np.ndarray, y_pred: np.ndarray, y_proba: np.ndarray | None = None
) -> float | None:
    """Compute a metric on labelled rows; ``None`` when it is undefined (e.g. one class).

    Parameters
    ----------
    metric
        ``roc_auc``, ``f1``, ``rmse`` or ``mae``.
    y_true, y_pred
        Labels and the model's predicted class (classifier) or value (regressor).
    y_proba
        Predicted probability, for ``roc_auc``.

    Returns
    -------
    float | None
        The metric value.

    Raises
    ------
    ValueError
        For an unknown metric.
    """
    if len(y_true) == 0:
        return None
    # plain numpy (sklearn's input validation cost more than the metrics on every chunk)
    if metric == "roc_auc":
        if y_proba is None:
            return None
        pos = np.asarray(y_true).astype(int) == 1
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos == 0 or n_neg == 0:
            return None
        # Mann-Whitney U with mid-ranks for ties: the area under the ROC curve
        ranks = rankdata(np.asarray(y_proba, dtype=np.float64))
        return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    if metric == "f1":
        t, p = np.asarray(y_true).astype(int) == 1, np.asarray(y_pred).astype(int) == 1
        tp = int(np.sum(t & p))
        denom = 2 * tp + int(np.sum(~t & p)) + int(np.sum(t & ~p))
        return 2 * tp / denom if denom else 0.0
    if metric == "rmse":
        return float(math.sqrt(np.mean((y_true - y_pred) ** 2)))
    if metric == "mae":
        return float(np.mean(np.abs(np.asarray(y_true) - np.asarray(y_pred))))
    raise ValueError(f"unknown metric {metric!r}")


class PerformanceEstimator:
    """nannyml CBPE or DLE behind one interface, on Millwright's chunks.

    Parameters
    ----------
    problem
        Classification (CBPE) or regression (DLE).
    columns
        Column names of the prediction log.
    metrics
        Metrics to estimate; defaults per problem type.
    threshold
        Classifier decision threshold that turns probability into class when the log has no
        predicted-class column.
    min_labels
        Labelled rows a chunk needs before a realized metric is reported.
    hyperparameters
        LightGBM settings for DLE (one thread and silent by default).
    """

    def __init__(
        self,
        *,
        problem: ProblemType,
        columns: LogColumns,
        metrics: Sequence[str] | None = None,
        threshold: float = 0.5,
        min_labels: int = 30,
        hyperparameters: dict[str, Any] | None = None,
    ) -> None:
        self.problem = problem
        self.columns = columns
        self.metrics = tuple(metrics or DEFAULT_METRICS[problem])
        self.threshold = threshold
        self.min_labels = min_labels
        self.reference_stats: dict[str, tuple[float, float]] = {}
        self.band_floor: dict[str, float] = {}
        self._fill: dict[str, float] = {}
        chunker = _ColumnChunker(columns.timestamp)
        if problem is ProblemType.CLASSIFICATION:
            self._estimator: Any = nml.CBPE(
                y_pred_proba=columns.prediction,
                y_pred=columns.predicted_class,
                y_true=columns.label,
                problem_type="classification_binary",
                metrics=list(self.metrics),
                chunker=chunker,
            )
        else:
            params = {"n_jobs": 1, "verbosity": -1, **(hyperparameters or {})}
            self._estimator = nml.DLE(
                feature_column_names=self._inputs,
                y_pred=columns.prediction,
                y_true=columns.label,
                metrics=list(self.metrics),
                chunker=chunker,
                hyperparameters=params,
            )

    @property
    def _inputs(self) -> list[str]:
        """What DLE reads besides the prediction: the monitored features."""
        return list(self.columns.features)

    def _prepare(self, frame: pd.DataFrame, *, keep_label: bool) -> pd.DataFrame:
        cols = [CHUNK_COLUMN, self.columns.prediction]
        if self.columns.timestamp in frame:
            cols.append(self.columns.timestamp)
        if self.problem is ProblemType.REGRESSION:
            cols += self._inputs
        if keep_label:
            cols.append(self.columns.label)
        out = frame[cols].copy()
        if self.problem is ProblemType.REGRESSION:
            out[self._inputs] = self._impute(frame)
        if self.problem is ProblemType.CLASSIFICATION:
            if self.columns.predicted_class in frame:
                out[self.columns.predicted_class] = frame[self.columns.predicted_class].astype(int)
            else:
                out[self.columns.predicted_class] = (
                    out[self.columns.prediction] >= self.threshold
                ).astype(int)
        return out

    def _impute(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Fill null inputs with the unit's last reading, else the reference median.

        LightGBM reads a null in a column that had none during fitting as 0.0, far outside
        any sensor's range, so one dropped reading would move DLE's error estimate by
        whatever its trees say about a sensor at zero. The unit's last reading is what a
        windowed model carries over a gap; the median is the fallback without one.
        """
        x = frame[self._inputs].astype(np.float64)
        if not x.isna().to_numpy().any():
            return x
        if self.columns.unit in frame:  # rows are in time order (assign_chunks sorts)
            x = x.groupby(frame[self.columns.unit].to_numpy(), sort=False).ffill()
        return x.fillna(getattr(self, "_fill", {}))

    def fit(self, reference: pd.DataFrame) -> PerformanceEstimator:
        """Fit on a fully labelled reference period (chunk column required).

        Also records, per metric, the baseline of the performance alert rules: the mean of
        the estimates over the reference chunks, and the larger of the standard deviations
        of the estimated and the realized metric over those chunks. Estimates on the data
        the estimator was fitted on vary less than they will on new units, so the realized
        spread is the honest measure of how much one chunk may differ from another.

        Raises
        ------
        ValueError
            If a reference row has no label.
        """
        if reference[self.columns.label].isna().any():
            raise ValueError("every reference row needs a label")
        if self.problem is ProblemType.REGRESSION:
            medians = reference[self._inputs].astype(np.float64).median()
            self._fill = {k: float(v) for k, v in medians.items() if math.isfinite(v)}
        data = self._prepare(reference, keep_label=True)
        if self.problem is ProblemType.CLASSIFICATION:
            data[self.columns.label] = data[self.columns.label].astype(int)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._estimator.fit(data)
        ref = self.estimate(reference)
        by_unit = self._unit_ordered_realized(reference)
        for metric in self.metrics:
            unit_real = np.array(
                [v for (_, m), (v, _) in by_unit.items() if m == metric and v is not None],
                dtype=float,
            )
            unit_real = unit_real[np.isfinite(unit_real)]
            est = np.array([p.estimated for p in ref if p.metric == metric], dtype=float)
            real = np.array(
                [p.realized for p in ref if p.metric == metric and p.realized is not None],
                dtype=float,
            )
            est, real = est[np.isfinite(est)], real[np.isfinite(real)]
            spread = [v.std(ddof=1) for v in (est, real) if v.size > 1]
            # the band must not depend on the order the reference was fed in: take the
            # larger spread of its own chunks and of the same rows cut unit after unit
            # (the least mixed feed; rows of one unit share its error)
            real_spread = [v.std(ddof=1) for v in (real, unit_real) if v.size > 1]
            self.band_floor[metric] = BAND_SIGMAS * float(max(real_spread, default=0.0))
            self.reference_stats[metric] = (
                float(est.mean()) if est.size else math.nan,
                float(max(spread)) if spread else 0.0,
            )
        return self

    def _unit_ordered_realized(
        self, reference: pd.DataFrame
    ) -> dict[tuple[int, str], tuple[float | None, int]]:
        """Realized metrics of the reference re-cut into full chunks, one unit after another.

        Chunks keep the reference's median chunk size; without a unit column (or with one
        row per unit, where the order says nothing) there is nothing to re-cut.
        """
        unit = self.columns.unit
        if unit not in reference or reference[unit].nunique() * 2 > len(reference):
            return {}
        size = int(reference.groupby(CHUNK_COLUMN).size().median())
        keys = [unit, *([self.columns.timestamp] if self.columns.timestamp in reference else [])]
        ordered = reference.sort_values(keys, kind="stable").copy()
        full = (len(ordered) // max(1, size)) * size
        if size < 1 or full < 2 * size:
            return {}
        ordered = ordered.iloc[:full]
        ordered[CHUNK_COLUMN] = np.arange(full) // size
        return self._realized(ordered)

    def estimate(self, frame: pd.DataFrame) -> list[ChunkPerformance]:
        """Estimate each metric on each chunk, with realized values where labels exist.

        Parameters
        ----------
        frame
            Log rows numbered by :func:`.chunking.assign_chunks`; labels optional.

        Returns
        -------
        list[ChunkPerformance]
            One entry per chunk and metric, in chunk order.
        """
        data = self._prepare(frame, keep_label=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = self._estimator.estimate(data).filter(period="analysis").to_df()
        keys = result[("chunk", "key")].astype(int).to_numpy()
        realized = self._realized(frame)
        floors = getattr(self, "band_floor", {})  # estimators fitted before the floor: none
        out = []
        for i, chunk in enumerate(keys):
            for metric in self.metrics:
                value, n = realized.get((int(chunk), metric), (None, 0))
                est = float(result[(metric, "value")].iloc[i])
                floor = floors.get(metric, 0.0)
                lower = float(result[(metric, "lower_confidence_boundary")].iloc[i])
                upper = float(result[(metric, "upper_confidence_boundary")].iloc[i])
                lo, hi = _METRIC_RANGE.get(metric, (-math.inf, math.inf))
                out.append(
                    ChunkPerformance(
                        chunk=int(chunk),
                        metric=metric,
                        estimated=est,
                        lower=max(lo, min(lower, est - floor)),
                        upper=min(hi, max(upper, est + floor)),
                        realized=value,
                        n_labels=n,
                    )
                )
        return out

    def _realized(self, frame: pd.DataFrame) -> dict[tuple[int, str], tuple[float | None, int]]:
        label = self.columns.label
        if label not in frame:
            return {}
        out: dict[tuple[int, str], tuple[float | None, int]] = {}
        labelled = frame[frame[label].notna()]
        for key, rows in labelled.groupby(CHUNK_COLUMN, sort=True):
            n = len(rows)
            y = rows[label].to_numpy(dtype=float)
            proba = rows[self.columns.prediction].to_numpy(dtype=float)
            if self.problem is ProblemType.CLASSIFICATION:
                pred = (
                    rows[self.columns.predicted_class].to_numpy()
                    if self.columns.predicted_class in rows
                    else (proba >= self.threshold).astype(int)
                )
            else:
                pred = proba
            for metric in self.metrics:
                value = realized_metric(metric, y, pred, proba) if n >= self.min_labels else None
                out[(int(key), metric)] = (value, n)
        return out

    def dump(self, path: Path) -> None:
        """Write the fitted estimator to a node-local file (pickle: never load foreign files)."""
        path.write_bytes(pickle.dumps(self))

    @classmethod
    def load(cls, path: Path) -> PerformanceEstimator:
        """Read an estimator written by :meth:`dump` on this node."""
        obj = pickle.loads(path.read_bytes())  # noqa: S301 - node-local, written by dump()
        if not isinstance(obj, cls):
            raise TypeError(f"{path} does not hold a {cls.__name__}")
        return obj
