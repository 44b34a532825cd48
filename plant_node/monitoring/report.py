"""Turn a window of monitoring results into the anonymized report the outbox sends to the hub."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence

import numpy as np

from federation.schemas.metrics_report import (
    AlertCounts,
    AlertKindName,
    AlertSummary,
    ChunkSummary,
    DriftScores,
    FeatureDrift,
    ImpactCounts,
    IntegrityCounts,
    LatencyPercentiles,
    MetricsReport,
    MetricValue,
    pseudonymize,
    report_id,
)
from plant_node.monitoring.alerts import Alert, EventType
from plant_node.monitoring.drift import UNIVARIATE_METRICS
from plant_node.monitoring.engine import ChunkResult


def _num(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _time(value: str | None) -> dt.datetime:
    if value is None:
        raise ValueError("chunk without a timestamp")
    ts = dt.datetime.fromisoformat(value)
    return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)


def _mean_scores(rows: Iterable[dict[str, float]]) -> DriftScores:
    per: dict[str, list[float]] = {m: [] for m in UNIVARIATE_METRICS}
    for scores in rows:
        for m in UNIVARIATE_METRICS:
            v = scores.get(m)
            if v is not None and math.isfinite(v):
                per[m].append(v)
    return DriftScores(**{m: (float(np.mean(v)) if v else None) for m, v in per.items()})


def _summary(alert: Alert) -> AlertSummary:
    since = _time(alert.since) if alert.since else None
    return AlertSummary(
        key=alert.key,
        kind=AlertKindName(alert.kind.value),
        since=since,
        value=alert.value,
        reference_mean=alert.reference_mean,
        sigmas=_num(alert.sigmas),
        top_features=[name for name, _ in alert.top_features[:3]],
    )


def build_metrics_report(
    results: Sequence[ChunkResult],
    *,
    plant_id: str,
    model_name: str,
    model_version: str,
    pseudonym_key: bytes,
    min_rows: int,
    open_alerts: int = 0,
    open_alert_keys: Sequence[str] | None = None,
    alarms: tuple[int, int] = (0, 0),
    impact: ImpactCounts | None = None,
) -> MetricsReport | None:
    """Aggregate a window of chunk results into a validated, anonymized report.

    Chunks with fewer than ``min_rows`` rows are left out (and counted); if the rest of the
    window has fewer than ``min_rows`` rows, nothing is reported.

    Parameters
    ----------
    results
        The window's chunk results from :func:`.engine.run_monitor`.
    plant_id, model_name, model_version
        Who reports on what.
    pseudonym_key
        The plant-held key for :func:`~federation.schemas.metrics_report.pseudonymize`; it
        also keys the report id (:func:`~federation.schemas.metrics_report.report_id`).
    min_rows
        The policy minimum of rows per chunk and per window.
    open_alerts
        Alerts still open at the end of the window.
    open_alert_keys
        Their rule keys (the hub closes its copy of an alert no longer listed); ``None``
        leaves the report's ``open_alert_keys`` null.
    alarms
        ``(true, false)`` alarms confirmed by labels (see :func:`.alerts.confirm_alerts`).
    impact
        Business outcome counts of the window (see :mod:`.impact`), already suppressed
        below the policy minimum.

    Returns
    -------
    MetricsReport | None
        The report, or ``None`` when the window is suppressed.
    """
    kept = [r for r in results if r.n_rows >= min_rows]
    n_rows = sum(r.n_rows for r in kept)
    if not kept or n_rows < min_rows:
        return None
    start, end = _time(kept[0].start), _time(kept[-1].end)

    chunks = []
    for r in kept:
        chunks.append(
            ChunkSummary(
                chunk=r.chunk,
                start=_time(r.start),
                end=_time(r.end),
                n_rows=r.n_rows,
                metrics=[
                    MetricValue(
                        metric=p.metric,
                        # an unreliable estimate travels as its reasons, never as a number
                        estimated=None if r.unreliable else _num(p.estimated),
                        lower=None if r.unreliable else _num(p.lower),
                        upper=None if r.unreliable else _num(p.upper),
                        realized=_num(p.realized),
                        n_labels=p.n_labels,
                        unreliable=list(r.unreliable),
                    )
                    for p in r.performance
                ],
                multivariate_drift=_num(r.drift.multivariate),
                drifted_features=sorted({c for c, _ in r.drift.drifted if c in r.drift.features}),
            )
        )

    features = list(kept[0].drift.features)
    drift = [
        FeatureDrift(
            feature=f,
            scores=_mean_scores(r.drift.features[f] for r in kept),
            drifted_chunks=sum(any(c == f for c, _ in r.drift.drifted) for r in kept),
        )
        for f in features
    ]
    prediction = (
        _mean_scores(r.drift.prediction for r in kept) if kept[0].drift.prediction else None
    )

    null: dict[str, int] = {}
    out_of_range: dict[str, int] = {}
    contract: dict[str, int] = {}
    stuck: dict[str, int] = {}
    stuck_units: set[str] = set()
    for r in kept:
        i = r.integrity
        for src, dst in ((i.null_counts, null), (i.out_of_range, out_of_range)):
            for k, v in src.items():
                if v:
                    dst[k] = dst.get(k, 0) + v
        for k, v in i.contract_violations.items():
            contract[k] = contract.get(k, 0) + v
        for f, units in i.stuck.items():
            stuck[f] = stuck.get(f, 0) + len(units)
            stuck_units.update(pseudonymize(u, pseudonym_key) for u in units)
    integrity = IntegrityCounts(
        null_values=null,
        out_of_range=out_of_range,
        contract_violations=contract,
        stuck_sensors=stuck,
        stuck_units=sorted(stuck_units)[:1000],
        missing_rows=sum(r.integrity.missing_rows for r in kept),
        late_rows=sum(r.integrity.late_rows for r in kept),
    )

    lat = [r.latency_ms for r in kept if r.latency_ms]
    latency = (
        LatencyPercentiles(
            p50=float(np.median([x["p50"] for x in lat])),
            p95=float(max(x["p95"] for x in lat)),
            p99=float(max(x["p99"] for x in lat)),
        )
        if lat
        else None
    )

    raised = [e.alert for r in kept for e in r.events if e.type is EventType.RAISED]
    cleared = sum(e.type is EventType.CLEARED for r in kept for e in r.events)
    by_kind: dict[AlertKindName, int] = {}
    for a in raised:
        kind = AlertKindName(a.kind.value)
        by_kind[kind] = by_kind.get(kind, 0) + 1
    return MetricsReport(
        report_id=report_id(
            plant_id=plant_id,
            model_name=model_name,
            model_version=model_version,
            start=start,
            end=end,
            secret=pseudonym_key,
        ),
        plant_id=plant_id,
        model_name=model_name,
        model_version=model_version,
        window_start=start,
        window_end=end,
        n_rows=n_rows,
        min_rows_policy=min_rows,
        suppressed_chunks=len(results) - len(kept),
        chunks=chunks,
        drift=drift,
        prediction_drift=prediction,
        integrity=integrity,
        latency_ms=latency,
        alerts=AlertCounts(
            raised=len(raised),
            cleared=cleared,
            open=open_alerts,
            true_alarms=alarms[0],
            false_alarms=alarms[1],
            by_kind=by_kind,
        ),
        alert_details=[_summary(a) for a in raised[:100]],
        open_alert_keys=None if open_alert_keys is None else sorted(open_alert_keys)[:100],
        impact=impact,
    )
