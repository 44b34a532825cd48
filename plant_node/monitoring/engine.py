"""The monitoring job's engine: fit every layer on a reference period, then run chunks through them.

:func:`fit_monitor` builds a :class:`FittedMonitor` once (drift summaries, integrity
reference, the nannyml estimator, the alert rules). :func:`run_monitor` takes new rows of
the prediction log and the :class:`MonitorState` left by the previous run, and returns one
:class:`ChunkResult` per chunk plus the next state. The node's scheduled job reads the rows
from its prediction-log table, calls :func:`run_monitor`, stores the state, and hands the
results to :func:`plant_node.monitoring.report.build_metrics_report` for the hub. The fitted
monitor and the state are stored between runs with :func:`save_monitor` / :func:`save_state`.

nannyml loads only when a monitor with performance estimation is fitted or run.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from plant_node.monitoring.alerts import (
    SEQUENTIAL_PREFIX,
    Alert,
    AlertEvent,
    AlertKind,
    AlertRule,
    AlertState,
    ChunkObservation,
    Direction,
    EventType,
    evaluate,
)
from plant_node.monitoring.calibration import log_mean
from plant_node.monitoring.chunking import CHUNK_COLUMN, LogColumns, assign_chunks
from plant_node.monitoring.detectors import CusumState, DetectorBank, build_detectors, step_all
from plant_node.monitoring.drift import (
    MULTIVARIATE_METRIC,
    RESIDUAL_PREFIX,
    ChunkDrift,
    DriftReference,
    fit_drift_reference,
    score_chunk,
)
from plant_node.monitoring.guards import (
    CONCEPT_SHIFT_KEY,
    ESTIMATE_GUARDS,
    REALIZED_LOSS_COLUMN,
    REALIZED_LOSS_KEY,
    WINDOWED_GUARD,
    ConceptState,
    estimate_guards,
    update_concept,
)
from plant_node.monitoring.integrity import (
    ChunkIntegrity,
    IntegrityReference,
    IntegrityState,
    check_chunk,
    fit_integrity_reference,
)

if TYPE_CHECKING:
    from plant_node.monitoring.estimation import ChunkPerformance, PerformanceEstimator


_T = TypeVar("_T")

#: Alert key of the feature-drift rule (worst feature's score over its threshold).
FEATURE_DRIFT_KEY = "drift:features"
#: Alert key of the prediction-drift rule.
PREDICTION_DRIFT_KEY = "drift:prediction"
#: Alert key of the sequential (CUSUM) rule over every feature's chunk mean.
SEQUENTIAL_FEATURES_KEY = f"{SEQUENTIAL_PREFIX}features"
#: Alert key of the CUSUM on the prediction's chunk mean.
SEQUENTIAL_PREDICTION_KEY = f"{SEQUENTIAL_PREFIX}prediction"
#: Alert key of the CUSUM on the multivariate reconstruction error.
SEQUENTIAL_MULTIVARIATE_KEY = f"{SEQUENTIAL_PREFIX}*:{MULTIVARIATE_METRIC}"
#: Alert key of the CUSUM on the realized per-row loss (labelled rows only).
SEQUENTIAL_LOSS_KEY = REALIZED_LOSS_KEY


@dataclass(frozen=True)
class MonitorConfig:
    """Monitoring knobs, normally taken from the model's recipe.

    Parameters
    ----------
    chunk_size
        Rows per chunk (or use ``chunk_period``).
    chunk_period
        Calendar chunks, a pandas offset alias such as ``"8h"``.
    problem
        ``"classification_binary"``, ``"regression"``, or ``None`` for no estimation.
    metrics
        Metrics to estimate; the first one drives the performance alert.
    performance_k, performance_k_clear
        Raise when the rolling estimate is ``k`` reference sigma worse than the reference
        mean; clear within ``k_clear`` sigma. The default is 2: on replayed C-MAPSS fleets,
        k = 1 paged on most stable streams of new units (see bench_monitoring).
    performance_window
        Chunks in the rolling mean (e.g. the number of chunks in 24 h).
    drift_k
        Width of the calibrated drift bands, in reference-chunk sigma.
    drift_alert_metric
        Preferred univariate metric for feature-drift alerts (all four are reported); a
        feature where its calibrated threshold leaves no room below the metric's maximum
        falls back to KS, then Wasserstein (:attr:`.drift.DriftReference.live`).
    false_alarm_rate
        Per-chunk false-alarm rate the sequential (CUSUM) detectors are designed for,
        shared by all of them (:mod:`.detectors`); ``0`` turns them off.
    cusum_k
        CUSUM reference value: half the shift, in standard deviations of a stable chunk's
        mean, the detectors are tuned to catch fastest.
    failure_mode_features
        Features the failure modes depend on: a drift alert naming one marks the following
        estimates ``unreliable (concept shift suspected)`` (:mod:`.guards`).
    concept_confirm
        Labelled chunks in a row whose realized metric falls outside the estimate's band
        before a concept shift is suspected.
    drift_clear_ratio
        The feature-drift alert clears when no feature scores above this share of its
        threshold.
    raise_after, clear_after
        Consecutive chunks to raise / clear any alert.
    integrity_floors
        Minimum raise level per integrity rate, so a clean reference (rate always 0)
        does not make a single null an incident.
    integrity_window
        Readings of one unit that must stay flat to call a sensor stuck.
    expected_interval_s
        Seconds between readings of one unit (the contract's frequency); learned if omitted.
    max_delay_s
        Rows received later than this after their timestamp count as late.
    windowed_inputs
        The model reads a window of each unit's recent readings (C-MAPSS), so lost readings
        make its estimate unreliable (see :data:`WINDOWED_GUARD`).
    """

    chunk_size: int | None = 500
    chunk_period: str | None = None
    problem: str | None = None
    metrics: tuple[str, ...] | None = None
    performance_k: float = 2.0
    performance_k_clear: float = 1.0
    performance_window: int = 3
    drift_k: float = 4.0
    drift_alert_metric: str = "js"
    false_alarm_rate: float = 0.002
    cusum_k: float = 0.5
    failure_mode_features: tuple[str, ...] = ()
    concept_confirm: int = 2
    drift_clear_ratio: float = 0.8
    raise_after: int = 2
    clear_after: int = 2
    integrity_floors: Mapping[str, float] = field(
        default_factory=lambda: {
            "integrity:null_rate": 0.02,
            "integrity:out_of_range_rate": 0.05,
            "integrity:stuck_rate": 0.25,
            "integrity:missing_rate": 0.05,
            "integrity:late_rate": 0.05,
        }
    )
    integrity_window: int = 10
    expected_interval_s: float | None = None
    max_delay_s: float | None = None
    windowed_inputs: bool = False

    @property
    def estimate_guards(self) -> tuple[str, ...]:
        """Rule keys whose breach flags a chunk's estimate as unreliable."""
        return ESTIMATE_GUARDS + ((WINDOWED_GUARD,) if self.windowed_inputs else ())


@dataclass
class FittedMonitor:
    """Every layer fitted on the reference period, and the alert rules built from it."""

    columns: LogColumns
    config: MonitorConfig
    drift: DriftReference
    integrity: IntegrityReference
    estimator: PerformanceEstimator | None
    rules: list[AlertRule]
    detectors: DetectorBank | None = None


@dataclass(frozen=True)
class MonitorState:
    """What one run leaves for the next.

    Parameters
    ----------
    alerts
        Alert-rule memory.
    integrity
        Per-unit tails for stuck-sensor and gap checks.
    detectors
        Sums of the sequential detectors, per watched column.
    concept
        The concept-shift guard's memory.
    next_chunk
        Number of the next chunk.
    processed_through
        ISO timestamp of the newest row processed so far: the next run reads the log rows
        strictly after it (rows of a held-back incomplete chunk are all after it).
    """

    alerts: AlertState = field(default_factory=AlertState)
    integrity: IntegrityState = field(default_factory=IntegrityState)
    detectors: Mapping[str, CusumState] = field(default_factory=dict)
    concept: ConceptState = field(default_factory=ConceptState)
    next_chunk: int = 0
    processed_through: str | None = None


@dataclass(frozen=True)
class ChunkResult:
    """Everything the monitor found on one chunk."""

    chunk: int
    start: str | None
    end: str | None
    n_rows: int
    drift: ChunkDrift
    integrity: ChunkIntegrity
    performance: list[ChunkPerformance]
    latency_ms: dict[str, float]
    events: list[AlertEvent]
    values: dict[str, float]
    unreliable: tuple[str, ...] = ()
    """Guard rules (:data:`ESTIMATE_GUARDS`, or :data:`.guards.CONCEPT_SHIFT_KEY`) this chunk
    breached; empty: trust the estimate."""
    sequential: dict[str, float] = field(default_factory=dict)
    """Each CUSUM's sum over its limit after this chunk (a detector fires above 1)."""


def _rates_by_chunk(results: Sequence[ChunkIntegrity]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in results:
        for k, v in r.rates().items():
            out.setdefault(k, []).append(v)
    return out


def _drift_rule(key: str, thr: Any, config: MonitorConfig) -> AlertRule:
    clear = min(thr.upper, thr.reference_mean + config.drift_k / 2 * thr.reference_std)
    return AlertRule(
        key=key,
        kind=AlertKind.DRIFT,
        direction=Direction.ABOVE,
        raise_at=thr.upper,
        clear_at=clear,
        reference_mean=thr.reference_mean,
        reference_std=thr.reference_std,
        raise_after=config.raise_after,
        clear_after=config.clear_after,
    )


def build_rules(
    *,
    drift: DriftReference,
    integrity_rates: Mapping[str, Sequence[float]],
    performance_stats: Mapping[str, tuple[float, float]],
    feature_ratio_stats: tuple[float, float],
    config: MonitorConfig,
    detectors: DetectorBank | None = None,
) -> list[AlertRule]:
    """Build the alert rules from reference statistics.

    Parameters
    ----------
    drift
        Calibrated drift reference.
    integrity_rates
        Integrity rates over the reference chunks, per rule key.
    performance_stats
        ``{metric: (mean, std)}`` of the estimated metric over the reference chunks.
    feature_ratio_stats
        Mean and standard deviation, over the reference chunks, of the worst feature's
        drift score divided by its threshold (in-sample, for the alert's context only).
    config
        Monitoring knobs.
    detectors
        The sequential detectors; each kind gets one rule on its sum over the limit.

    Returns
    -------
    list[AlertRule]
        Performance (first metric), multivariate drift, feature drift (one rule over all
        features), prediction drift, sequential (CUSUM) and integrity rules.
    """
    rules: list[AlertRule] = []
    for metric, (mean, std) in list(performance_stats.items())[:1]:
        if math.isfinite(mean):
            direction = Direction.ABOVE if _lower_is_better(metric) else Direction.BELOW
            rules.append(
                AlertRule.control_chart(
                    f"performance:{metric}",
                    kind=AlertKind.PERFORMANCE,
                    direction=direction,
                    reference_mean=mean,
                    reference_std=std,
                    k=config.performance_k,
                    k_clear=config.performance_k_clear,
                    window=config.performance_window,
                    raise_after=config.raise_after,
                    clear_after=config.clear_after,
                )
            )
    multi = drift.thresholds.get("*", {}).get(MULTIVARIATE_METRIC)
    if multi is not None and drift.pca is not None:
        rules.append(_drift_rule(f"drift:*:{MULTIVARIATE_METRIC}", multi, config))
    metric = config.drift_alert_metric
    # One rule for all features (the worst feature's score over its threshold), so a fleet
    # shift pages once and names the features, instead of once per feature.
    rules.append(
        AlertRule(
            key=FEATURE_DRIFT_KEY,
            kind=AlertKind.DRIFT,
            direction=Direction.ABOVE,
            raise_at=1.0,
            clear_at=config.drift_clear_ratio,
            reference_mean=feature_ratio_stats[0],
            reference_std=feature_ratio_stats[1],
            raise_after=config.raise_after,
            clear_after=config.clear_after,
        )
    )
    if drift.prediction is not None:
        live = drift.live_metric(drift.prediction.name, metric)
        thr = drift.thresholds.get(drift.prediction.name, {}).get(live)
        if thr is not None and math.isfinite(thr.upper):
            rules.append(_drift_rule(PREDICTION_DRIFT_KEY, thr, config))
    if detectors is not None and detectors.detectors:
        watched = {d.column for d in detectors.detectors}
        prediction = drift.prediction.name if drift.prediction is not None else None
        keys = [SEQUENTIAL_FEATURES_KEY]
        if prediction in watched:
            keys.append(SEQUENTIAL_PREDICTION_KEY)
        if "*" in watched:
            keys.append(SEQUENTIAL_MULTIVARIATE_KEY)
        if REALIZED_LOSS_COLUMN in watched:
            keys.append(SEQUENTIAL_LOSS_KEY)
        for key in keys:
            # a CUSUM already accumulates evidence: it raises on the chunk it passes its limit
            rules.append(
                AlertRule(
                    key=key,
                    kind=AlertKind.PERFORMANCE if key == SEQUENTIAL_LOSS_KEY else AlertKind.DRIFT,
                    direction=Direction.ABOVE,
                    raise_at=1.0,
                    clear_at=0.5,
                    reference_mean=0.0,
                    reference_std=0.0,
                    raise_after=1,
                    clear_after=config.clear_after,
                )
            )
    for key, floor in config.integrity_floors.items():
        vals = np.asarray(integrity_rates.get(key, [0.0]), dtype=float)
        mean = float(vals.mean())
        std = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
        raise_at = max(floor, mean + config.drift_k * std, float(vals.max()))
        rules.append(
            AlertRule(
                key=key,
                kind=AlertKind.INTEGRITY,
                direction=Direction.ABOVE,
                raise_at=raise_at,
                clear_at=min(raise_at, max(mean, floor / 2)),
                reference_mean=mean,
                reference_std=std,
                raise_after=config.raise_after,
                clear_after=config.clear_after,
            )
        )
    return rules


def _lower_is_better(metric: str) -> bool:
    return metric in {"rmse", "mae", "mse", "mape", "rmsle", "msle"}


def _chunked(frame: pd.DataFrame, columns: LogColumns, config: MonitorConfig, start: int) -> Any:
    return assign_chunks(
        frame,
        timestamp=columns.timestamp,
        size=config.chunk_size if config.chunk_period is None else None,
        period=config.chunk_period,
        start_index=start,
    )


def row_loss(frame: pd.DataFrame, columns: LogColumns, problem: str | None) -> np.ndarray | None:
    """Return the model's loss per row where the label is known (NaN elsewhere).

    Absolute error for a regressor, Brier score (squared error of the probability) for a
    binary classifier; ``None`` without a problem type, a prediction or a label column.
    """
    if not problem or columns.prediction not in frame or columns.label not in frame:
        return None
    pred = pd.to_numeric(frame[columns.prediction], errors="coerce").to_numpy(dtype=np.float64)
    label = pd.to_numeric(frame[columns.label], errors="coerce").to_numpy(dtype=np.float64)
    diff = pred - label
    out: np.ndarray = np.abs(diff) if problem == "regression" else diff * diff
    return out


def fit_monitor(
    reference: pd.DataFrame, *, columns: LogColumns, config: MonitorConfig
) -> FittedMonitor:
    """Fit drift, integrity and (if ``config.problem``) performance estimation on a reference.

    Parameters
    ----------
    reference
        Labelled reference rows of the prediction log.
    columns
        Column names of the log.
    config
        Monitoring knobs.

    Returns
    -------
    FittedMonitor
        Ready for :func:`run_monitor`.
    """
    ref = _chunked(reference, columns, config, 0)
    loss = row_loss(ref, columns, config.problem) if config.false_alarm_rate > 0 else None
    if loss is not None and np.isfinite(loss).sum() < 2:
        loss = None
    drift = fit_drift_reference(
        ref,
        features=columns.features,
        prediction=columns.prediction,
        unit=columns.unit if columns.unit in ref else None,
        timestamp=columns.timestamp,
        chunk_size=config.chunk_size or max(1, len(ref) // max(1, ref[CHUNK_COLUMN].nunique())),
        k=config.drift_k,
        alert_metric=config.drift_alert_metric,
        extra_means=None
        if loss is None
        else pd.DataFrame({REALIZED_LOSS_COLUMN: loss}, index=ref.index),
        log_means=(REALIZED_LOSS_COLUMN,),
    )
    detectors = None
    if config.false_alarm_rate > 0:
        watched = [*columns.features, *([columns.prediction] if columns.prediction else [])]
        if drift.residuals is not None:
            watched += [RESIDUAL_PREFIX + c for c in drift.residuals.columns]
        if REALIZED_LOSS_COLUMN in drift.chunk_means:
            watched.append(REALIZED_LOSS_COLUMN)
        row_std = {n: c.std for n, c in drift.features.items()}
        if drift.residuals is not None:
            # a step of one row sigma moves the standardized residual by 1
            row_std.update({RESIDUAL_PREFIX + c: 1.0 for c in drift.residuals.columns})
        if drift.prediction is not None:
            row_std[drift.prediction.name] = drift.prediction.std
        detectors = build_detectors(
            drift.chunk_means,
            columns=watched,
            row_std=row_std,
            false_alarm_rate=config.false_alarm_rate,
            k=config.cusum_k,
            upper_only=(REALIZED_LOSS_COLUMN,),
        )
    integrity = fit_integrity_reference(
        ref,
        columns=columns,
        interval_s=config.expected_interval_s,
        window=config.integrity_window,
        max_delay_s=config.max_delay_s,
    )
    state = IntegrityState()
    ref_integrity = []
    ratios = []
    for key, rows in ref.groupby(CHUNK_COLUMN, sort=True):
        chunk = int(key)
        res, state = check_chunk(integrity, rows, state, columns=columns, chunk=chunk)
        ref_integrity.append(res)
        excess = score_chunk(drift, rows, chunk=chunk).excess(drift)
        ratios.append(max(excess.values(), default=0.0))
    ratio_stats = (
        float(np.mean(ratios)),
        float(np.std(ratios, ddof=1)) if len(ratios) > 1 else 0.0,
    )
    estimator = None
    stats: dict[str, tuple[float, float]] = {}
    if config.problem:
        from plant_node.monitoring.estimation import PerformanceEstimator, ProblemType

        estimator = PerformanceEstimator(
            problem=ProblemType(config.problem), columns=columns, metrics=config.metrics
        ).fit(ref)
        stats = estimator.reference_stats
    rules = build_rules(
        drift=drift,
        integrity_rates=_rates_by_chunk(ref_integrity),
        performance_stats=stats,
        feature_ratio_stats=ratio_stats,
        config=config,
        detectors=detectors,
    )
    return FittedMonitor(columns, config, drift, integrity, estimator, rules, detectors)


def _iso(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(pd.Timestamp(value).isoformat())


def run_monitor(
    monitor: FittedMonitor,
    frame: pd.DataFrame,
    state: MonitorState | None = None,
    *,
    violations: Mapping[int, Sequence[Mapping[str, Any]]] | None = None,
    hold_partial: bool = False,
) -> tuple[list[ChunkResult], MonitorState]:
    """Run new prediction-log rows through every layer and the alert rules.

    Parameters
    ----------
    monitor
        From :func:`fit_monitor`.
    frame
        New log rows (labels optional; rows are sorted by time and chunked here).
    state
        Returned by the previous run; ``None`` on the first.
    violations
        Contract-validator report entries per chunk index, if any.
    hold_partial
        Leave the last chunk for the next run when it is incomplete (fewer rows than
        ``chunk_size``, or the still-open period); the next run gets those rows again by
        reading after the state's ``processed_through``. The scheduled job sets this.

    Returns
    -------
    tuple[list[ChunkResult], MonitorState]
        One result per chunk, and the state for the next run.
    """
    state = state or MonitorState()
    cols = monitor.columns
    data = _chunked(frame, cols, monitor.config, state.next_chunk)
    if hold_partial and len(data):
        last_key = data[CHUNK_COLUMN].iloc[-1]
        tail = data[data[CHUNK_COLUMN] == last_key]
        size = monitor.config.chunk_size
        if monitor.config.chunk_period is not None or (size and len(tail) < size):
            # cut at a timestamp, so rows sharing the cut time all go to the next run
            cut = tail[cols.timestamp].min()
            data = data[data[cols.timestamp] < cut]
    perf: dict[int, list[ChunkPerformance]] = {}
    if monitor.estimator is not None and len(data):
        for p in monitor.estimator.estimate(data):
            perf.setdefault(p.chunk, []).append(p)
    metric = monitor.config.drift_alert_metric
    bank: DetectorBank | None = getattr(monitor, "detectors", None)  # None: fitted before CUSUM
    alert_state, int_state = state.alerts, state.integrity
    cusum_state = dict(getattr(state, "detectors", {}) or {})
    concept: ConceptState = getattr(state, "concept", None) or ConceptState()
    config = monitor.config
    results = []
    last = state.next_chunk - 1
    for key, rows in data.groupby(CHUNK_COLUMN, sort=True):
        chunk = int(key)
        last = chunk
        drift = score_chunk(monitor.drift, rows, chunk=chunk)
        integ, int_state = check_chunk(
            monitor.integrity,
            rows,
            int_state,
            columns=cols,
            chunk=chunk,
            violations=(violations or {}).get(chunk, ()),
        )
        values: dict[str, float] = dict(integ.rates())
        values[f"drift:*:{MULTIVARIATE_METRIC}"] = drift.multivariate
        excess = drift.excess(monitor.drift)
        values[FEATURE_DRIFT_KEY] = max(excess.values(), default=0.0)
        if monitor.drift.prediction is not None:
            live = monitor.drift.live_metric(monitor.drift.prediction.name, metric)
            if live in drift.prediction:
                values[PREDICTION_DRIFT_KEY] = drift.prediction[live]
        context = dict(integ.worst_columns())
        sequential: dict[str, float] = {}
        if bank is not None and bank.detectors:
            stats = _chunk_statistics(bank, rows, drift, monitor.drift)
            if any(d.column == REALIZED_LOSS_COLUMN for d in bank.detectors):
                loss = row_loss(rows, cols, config.problem)
                known = loss[np.isfinite(loss)] if loss is not None else np.empty(0)
                # on the log scale it was calibrated on: a loss that doubles moves by log 2
                stats[REALIZED_LOSS_COLUMN] = (
                    log_mean(float(known.mean())) if known.size else math.nan
                )
            cusum_state, sequential = step_all(bank, cusum_state, stats, chunk=chunk)
            context.update(_sequential_values(bank, sequential, monitor, values))
        guards = config.estimate_guards
        unreliable = estimate_guards(monitor.rules, values, guards) if chunk in perf else ()
        # labels that arrived with this chunk are evidence before its estimate is used
        concept = update_concept(
            concept,
            chunk=chunk,
            performance=perf.get(chunk, []),
            raised=[],
            confirm=getattr(config, "concept_confirm", 2),
        )
        if concept.suspected and chunk in perf:
            unreliable = (*unreliable, CONCEPT_SHIFT_KEY)
        if not unreliable:
            # an unreliable estimate never moves the performance control chart (its window
            # skips the chunk); the integrity or drift rule that flagged it pages instead
            for p in perf.get(chunk, []):
                values[f"performance:{p.metric}"] = p.estimated
        start = _iso(rows[cols.timestamp].min())
        obs = ChunkObservation(
            chunk=chunk,
            values=values,
            start=start,
            top_features=list(excess.items())[:3],
            context=context,
        )
        alert_state, events = evaluate(monitor.rules, alert_state, obs)
        was = concept.suspected
        concept = update_concept(
            concept,
            chunk=chunk,
            performance=[],
            raised=[e.alert for e in events if e.type is EventType.RAISED],
            failure_mode_features=getattr(config, "failure_mode_features", ()),
        )
        if concept.suspected and not was and chunk in perf:
            # an alert this chunk raised names a failure-mode feature: its estimate too
            unreliable = (*unreliable, CONCEPT_SHIFT_KEY)
        latency = {}
        if cols.latency_ms in rows:
            lat = rows[cols.latency_ms].dropna().to_numpy(dtype=float)
            if lat.size:
                p50, p95, p99 = np.percentile(lat, [50, 95, 99])
                latency = {"p50": float(p50), "p95": float(p95), "p99": float(p99)}
        results.append(
            ChunkResult(
                chunk=chunk,
                start=start,
                end=_iso(rows[cols.timestamp].max()),
                n_rows=len(rows),
                drift=drift,
                integrity=integ,
                performance=perf.get(chunk, []),
                latency_ms=latency,
                events=events,
                values=values,
                unreliable=unreliable,
                sequential=sequential,
            )
        )
    new_state = MonitorState(
        alerts=alert_state,
        integrity=int_state,
        detectors=cusum_state,
        concept=concept,
        next_chunk=last + 1,
        processed_through=_iso(data[cols.timestamp].max())
        if len(data)
        else state.processed_through,
    )
    return results, new_state


def _chunk_statistics(
    bank: DetectorBank, rows: pd.DataFrame, drift: ChunkDrift, monitor_drift: DriftReference
) -> dict[str, float]:
    """Return each detector's per-chunk statistic: column means, and the multivariate error."""
    out: dict[str, float] = {}
    ref = getattr(monitor_drift, "residuals", None)
    if ref is not None and any(d.column.startswith(RESIDUAL_PREFIX) for d in bank.detectors):
        res = ref.residuals(rows[ref.columns].to_numpy(dtype=np.float64))
        for i, c in enumerate(ref.columns):
            out[RESIDUAL_PREFIX + c] = float(res[:, i].mean()) if len(res) else math.nan
    for d in bank.detectors:
        if d.column.startswith(RESIDUAL_PREFIX) or d.column == REALIZED_LOSS_COLUMN:
            continue
        if d.column == "*":
            out["*"] = drift.multivariate
        elif d.column in rows:
            col = rows[d.column].to_numpy(dtype=np.float64)
            col = col[np.isfinite(col)]
            out[d.column] = float(col.mean()) if col.size else math.nan
    return out


def _sequential_values(
    bank: DetectorBank,
    ratios: Mapping[str, float],
    monitor: FittedMonitor,
    values: dict[str, float],
) -> dict[str, list[tuple[str, float]]]:
    """Put each sequential rule's value in ``values``; return the columns each alert names."""
    prediction = monitor.drift.prediction.name if monitor.drift.prediction is not None else None
    # a residual's detector names its feature: the operator looks at one sensor either way
    feats: dict[str, float] = {}
    for c, r in ratios.items():
        if c in ("*", prediction, REALIZED_LOSS_COLUMN) or not math.isfinite(r):
            continue
        name = c.removeprefix(RESIDUAL_PREFIX)
        feats[name] = max(r, feats.get(name, 0.0))
    values[SEQUENTIAL_FEATURES_KEY] = max(feats.values(), default=0.0)
    if prediction is not None and prediction in ratios:
        values[SEQUENTIAL_PREDICTION_KEY] = ratios[prediction]
    if "*" in ratios:
        values[SEQUENTIAL_MULTIVARIATE_KEY] = ratios["*"]
    if REALIZED_LOSS_COLUMN in ratios:
        values[SEQUENTIAL_LOSS_KEY] = ratios[REALIZED_LOSS_COLUMN]
    top = sorted(feats.items(), key=lambda kv: -kv[1])[:3]
    out: dict[str, list[tuple[str, float]]] = {SEQUENTIAL_FEATURES_KEY: top}
    if REALIZED_LOSS_COLUMN in ratios:
        # the loss alert names what built up (not the drifted features: inputs may not move)
        out[SEQUENTIAL_LOSS_KEY] = [(REALIZED_LOSS_COLUMN, ratios[REALIZED_LOSS_COLUMN])]
    return out


def _save(obj: object, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(path)  # atomic: a crash mid-write leaves the previous file


class _Unpickler(pickle.Unpickler):
    """Reads monitors pickled before the engine moved out of ``monitoring.service``."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "plant_node.monitoring.service":
            module = "plant_node.monitoring.engine"
        return super().find_class(module, name)


def _load(path: Path, kind: type[_T]) -> _T:
    with path.open("rb") as f:
        obj = _Unpickler(f).load()  # noqa: S301 - node-local file written by _save
    if not isinstance(obj, kind):
        raise TypeError(f"{path} does not hold a {kind.__name__}")
    return obj


def save_monitor(monitor: FittedMonitor, path: Path) -> None:
    """Write a fitted monitor to a node-local file, atomically (pickle: never load others)."""
    _save(monitor, path)


def load_monitor(path: Path) -> FittedMonitor:
    """Read a monitor written by :func:`save_monitor` on this node."""
    return _load(path, FittedMonitor)


def save_state(state: MonitorState, path: Path) -> None:
    """Write the state a run returned, atomically, for the next run."""
    _save(state, path)


def load_state(path: Path) -> MonitorState:
    """Read a state written by :func:`save_state`; a missing file means a first run."""
    return _load(path, MonitorState) if path.exists() else MonitorState()


def raised_alerts(results: Sequence[ChunkResult]) -> list[Alert]:
    """Return the alerts raised over a run, in order."""
    return [e.alert for r in results for e in r.events if e.type.value == "raised"]


__all__ = [
    "ESTIMATE_GUARDS",
    "SEQUENTIAL_FEATURES_KEY",
    "SEQUENTIAL_LOSS_KEY",
    "WINDOWED_GUARD",
    "ChunkResult",
    "FittedMonitor",
    "MonitorConfig",
    "MonitorState",
    "build_rules",
    "estimate_guards",
    "fit_monitor",
    "load_monitor",
    "load_state",
    "raised_alerts",
    "row_loss",
    "run_monitor",
    "save_monitor",
    "save_state",
]
