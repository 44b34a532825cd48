"""The monitoring service: outcomes in, chunk results and alerts out (keyword-only, over a session).

Nothing here imports nannyml or pandas: the serving process mounts these routes.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federation.errors import Conflict, ErrorCode, InvalidInput
from plant_node.db import utcnow
from plant_node.metrics import NodeMetrics
from plant_node.monitoring.models import MonitoringAlert, MonitoringChunk, Outcome, OutcomeRequest
from plant_node.monitoring.schemas import (
    AlertRead,
    ChunkRead,
    FailureRecord,
    OutcomeBatch,
    OutcomeRead,
    OutcomeResult,
    QaVerdict,
)
from plant_node.serving import records as serving_records


def _request_hash(batch: OutcomeBatch) -> str:
    raw = json.dumps(batch.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def _error(i: int, field: str, message: str) -> dict[str, Any]:
    return {"index": i, "field": field, "message": message}


def _qa(session: Session, i: int, item: QaVerdict, errors: list[dict[str, Any]]) -> Outcome | None:
    prediction = serving_records.get_prediction(session=session, prediction_id=item.prediction_id)
    if prediction is None:
        errors.append(_error(i, "prediction_id", f"unknown prediction id {item.prediction_id!r}"))
        return None
    label, name = item.label, prediction.baseline
    if prediction.classifier:
        if isinstance(label, float) or label not in (0, 1):
            msg = f"{name} is a classifier: label must be 0, 1, true or false, not {label!r}"
            errors.append(_error(i, "label", msg))
            return None
    elif isinstance(label, bool) or label < 0:
        msg = f"{name} is a regressor: label must be a number >= 0, not {label!r}"
        errors.append(_error(i, "label", msg))
        return None
    return Outcome(
        kind="qa",
        natural_key=f"qa:{prediction.id}",
        baseline=prediction.baseline,
        prediction_id=prediction.id,
        label=float(label),
    )


def _failure(
    session: Session, i: int, item: FailureRecord, errors: list[dict[str, Any]]
) -> Outcome | None:
    unit = item.unit_id()
    found = serving_records.last_cycles_of_unit(session=session, unit=unit, baseline=item.baseline)
    if not found:
        errors.append(_error(i, "unit", f"unknown unit {unit!r}: no prediction logged for it"))
        return None
    if len(found) > 1:
        msg = f"unit {unit!r} is logged by {sorted(found)}; say which baseline failed"
        errors.append(_error(i, "baseline", msg))
        return None
    baseline, last_cycle = next(iter(found.items()))
    if last_cycle is not None and float(last_cycle) > item.failed_at_cycle:
        msg = (
            f"unit {unit!r} has a prediction at cycle {last_cycle}, after its reported "
            f"failure at cycle {item.failed_at_cycle}"
        )
        errors.append(_error(i, "failed_at_cycle", msg))
        return None
    return Outcome(
        kind="failure",
        natural_key=f"failure:{baseline}:{unit}",
        baseline=baseline,
        unit=unit,
        failed_at_cycle=float(item.failed_at_cycle),
        failed_at=item.failed_at or utcnow(),
    )


def create_outcomes(
    *, session: Session, batch: OutcomeBatch, idempotency_key: str | None = None
) -> OutcomeResult:
    """Validate and store a batch of outcomes, all or none; commits once.

    Re-posting with the same ``Idempotency-Key`` and body returns the first answer.

    Raises
    ------
    InvalidInput
        Unknown prediction ids or units, labels of the wrong type for the model, failures
        before a logged prediction, or an idempotency key reused with another body; every
        problem is listed with the index of its outcome.
    Conflict
        Outcomes already recorded (same unit failure, or a second verdict on a prediction).
    """
    req_hash = _request_hash(batch)
    if idempotency_key is not None:
        earlier = session.get(OutcomeRequest, idempotency_key)
        if earlier is not None:
            if earlier.request_hash != req_hash:
                raise InvalidInput(
                    f"Idempotency-Key {idempotency_key!r} was already used for a different "
                    "request; use a new key for a new request.",
                    code=ErrorCode.IDEMPOTENCY_MISMATCH,
                )
            return OutcomeResult.model_validate(earlier.response)
    errors: list[dict[str, Any]] = []
    rows: list[tuple[int, Outcome]] = []
    for i, item in enumerate(batch.outcomes):
        row = (
            _qa(session, i, item, errors)
            if isinstance(item, QaVerdict)
            else _failure(session, i, item, errors)
        )
        if row is not None:
            rows.append((i, row))
    if errors:
        raise InvalidInput(f"{len(errors)} outcome(s) refused; nothing was stored.", errors=errors)
    keys = [r.natural_key for _, r in rows]
    query = select(Outcome.natural_key).where(Outcome.natural_key.in_(keys))
    stored = set(session.execute(query).scalars())
    seen: set[str] = set()
    dupes = []
    for i, row in rows:
        if row.natural_key in stored or row.natural_key in seen:
            dupes.append(_error(i, "outcome", f"duplicate outcome {row.natural_key}"))
        seen.add(row.natural_key)
    if dupes:
        raise Conflict(
            f"{len(dupes)} outcome(s) already recorded; nothing was stored.", errors=dupes
        )
    session.add_all(r for _, r in rows)
    session.flush()
    result = OutcomeResult(
        created=len(rows), outcomes=[OutcomeRead.model_validate(r) for _, r in rows]
    )
    if idempotency_key is not None:
        session.add(
            OutcomeRequest(
                key=idempotency_key, request_hash=req_hash, response=result.model_dump(mode="json")
            )
        )
    session.commit()
    return result


# -- labels for the monitoring job ------------------------------------------------------------


def labels_for_predictions(*, session: Session, prediction_ids: Sequence[str]) -> dict[str, float]:
    """QA verdicts of these predictions, by prediction id."""
    out: dict[str, float] = {}
    for start in range(0, len(prediction_ids), 500):
        part = prediction_ids[start : start + 500]
        query = select(Outcome.prediction_id, Outcome.label).where(
            Outcome.kind == "qa", Outcome.prediction_id.in_(part)
        )
        for pid, label in session.execute(query).all():
            if pid is not None and label is not None:
                out[str(pid)] = float(label)
    return out


def failures_for_units(
    *, session: Session, baseline: str, units: Iterable[str]
) -> dict[str, float]:
    """Failure cycle per unit of a baseline, for the units given."""
    wanted = sorted(set(units))
    out: dict[str, float] = {}
    for start in range(0, len(wanted), 500):
        query = select(Outcome.unit, Outcome.failed_at_cycle).where(
            Outcome.kind == "failure",
            Outcome.baseline == baseline,
            Outcome.unit.in_(wanted[start : start + 500]),
        )
        for unit, cycle in session.execute(query).all():
            if unit is not None and cycle is not None:
                out[str(unit)] = float(cycle)
    return out


def failure_times(*, session: Session, baseline: str) -> list[datetime]:
    """When the recorded failures of a baseline's units happened."""
    query = select(Outcome.failed_at).where(Outcome.kind == "failure", Outcome.baseline == baseline)
    return [t for t in session.execute(query).scalars() if t is not None]


# -- results -------------------------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def upsert_chunk(*, session: Session, values: dict[str, Any]) -> MonitoringChunk:
    """Insert or replace one chunk's results (a re-run after a crash rewrites the same chunk)."""
    row = session.execute(
        select(MonitoringChunk).where(
            MonitoringChunk.baseline == values["baseline"],
            MonitoringChunk.model_version == values["model_version"],
            MonitoringChunk.chunk == values["chunk"],
        )
    ).scalar_one_or_none()
    if row is None:
        row = MonitoringChunk(**values)
        session.add(row)
    else:
        for k, v in values.items():
            setattr(row, k, v)
    session.flush()
    return row


def raise_alert(*, session: Session, values: dict[str, Any]) -> MonitoringAlert:
    """Record a raised alert once (keyed by baseline, version, rule and start chunk)."""
    row = session.execute(
        select(MonitoringAlert).where(
            MonitoringAlert.baseline == values["baseline"],
            MonitoringAlert.model_version == values["model_version"],
            MonitoringAlert.key == values["key"],
            MonitoringAlert.since_chunk == values["since_chunk"],
        )
    ).scalar_one_or_none()
    if row is None:
        row = MonitoringAlert(status="open", **values)
        session.add(row)
        session.flush()
    return row


def clear_alert(
    *,
    session: Session,
    baseline: str,
    model_version: str,
    key: str,
    since_chunk: int,
    cleared_chunk: int,
    worst_value: float,
    at: datetime | None,
) -> None:
    """Close an open alert when its rule recovered."""
    row = session.execute(
        select(MonitoringAlert).where(
            MonitoringAlert.baseline == baseline,
            MonitoringAlert.model_version == model_version,
            MonitoringAlert.key == key,
            MonitoringAlert.since_chunk == since_chunk,
        )
    ).scalar_one_or_none()
    if row is not None:
        row.status = "closed"
        row.cleared_chunk = cleared_chunk
        row.worst_value = worst_value
        row.cleared_at = at or utcnow()
        session.flush()


def alert_starts(*, session: Session, baseline: str) -> list[datetime]:
    """Start of every alert of a baseline (for true/false alarm tallies)."""
    query = select(MonitoringAlert.since).where(MonitoringAlert.baseline == baseline)
    return [t for t in session.execute(query).scalars() if t is not None]


def list_chunks(
    *,
    session: Session,
    baseline: str | None = None,
    model_version: str | None = None,
    limit: int = 200,
) -> list[ChunkRead]:
    """Return the newest chunks (up to ``limit``), oldest first."""
    query = select(MonitoringChunk).order_by(MonitoringChunk.end.desc(), MonitoringChunk.id.desc())
    if baseline is not None:
        query = query.where(MonitoringChunk.baseline == baseline)
    if model_version is not None:
        query = query.where(MonitoringChunk.model_version == model_version)
    rows = list(session.execute(query.limit(limit)).scalars())
    return [ChunkRead.model_validate(r) for r in reversed(rows)]


def list_alerts(
    *, session: Session, status: str | None = None, baseline: str | None = None, limit: int = 200
) -> list[AlertRead]:
    """Return alerts, newest first."""
    query = select(MonitoringAlert).order_by(MonitoringAlert.id.desc())
    if status is not None:
        query = query.where(MonitoringAlert.status == status)
    if baseline is not None:
        query = query.where(MonitoringAlert.baseline == baseline)
    return [AlertRead.model_validate(r) for r in session.execute(query.limit(limit)).scalars()]


def refresh_gauges(*, session: Session, metrics: NodeMetrics) -> None:
    """Set the monitoring gauges from the database, so they hold whoever ran the job."""
    metrics.monitoring_alerts.clear()
    query = select(
        MonitoringAlert.baseline, MonitoringAlert.kind, MonitoringAlert.status, func.count()
    ).group_by(MonitoringAlert.baseline, MonitoringAlert.kind, MonitoringAlert.status)
    for baseline, kind, status, n in session.execute(query).all():
        metrics.monitoring_alerts.labels(baseline, kind, status).set(n)
    metrics.monitoring_chunks.clear()
    for baseline, n in session.execute(
        select(MonitoringChunk.baseline, func.count()).group_by(MonitoringChunk.baseline)
    ).all():
        metrics.monitoring_chunks.labels(baseline).set(n)
    metrics.monitoring_metric.clear()
    latest = (
        select(MonitoringChunk.baseline, func.max(MonitoringChunk.id).label("id"))
        .group_by(MonitoringChunk.baseline)
        .subquery()
    )
    query2 = select(MonitoringChunk).join(latest, MonitoringChunk.id == latest.c.id)
    for row in session.execute(query2).scalars():
        for kind, value in (("estimated", row.estimated), ("realized", row.realized)):
            v = _finite(value)
            if v is not None and row.metric:
                metrics.monitoring_metric.labels(row.baseline, row.metric, kind).set(v)
