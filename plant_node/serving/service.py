"""Serving service: the prediction log, quarantine and feedback (keyword-only, session first)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic_core import to_json
from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.errors import NotFound
from plant_node.db import utcnow
from plant_node.outbox import service as outbox_service
from plant_node.serving.models import Feedback, Prediction, QuarantinedBatch
from plant_node.serving.schemas import FeedbackCreate, PredictionDetail, PredictionRead

FEEDBACK_STREAM = "feedback"
ALERT_STREAM = "alerts"
ROLLOUT_STREAM = "rollout"


def add_predictions(*, session: Session, rows: list[Prediction]) -> None:
    """Stage prediction log rows (flush only)."""
    session.add_all(rows)
    session.flush()


def quarantine_batch(
    *,
    session: Session,
    batch_id: str,
    baseline: str,
    records: list[dict[str, Any]],
    violations: list[dict[str, Any]],
    excerpt_bytes: int = 16_384,
    max_violations: int = 200,
) -> QuarantinedBatch:
    """Keep a rejected request's excerpt, size and sha256 with its violation report (flush only).

    The payload holds the leading records that fit in ``excerpt_bytes`` of JSON, the number
    of records, the batch's JSON size and the sha256 of that JSON (the canonical encoding of
    the records as parsed), so a 10 MB rejected batch costs kilobytes, and a copy kept by
    the sender can still be matched. At most ``max_violations`` violations are kept.

    Returns
    -------
    QuarantinedBatch
        The stored row.
    """
    encoded = [to_json(r, inf_nan_mode="constants") for r in records]
    whole = b"[" + b",".join(encoded) + b"]"
    kept: list[dict[str, Any]] = []
    used = 2
    for record, raw in zip(records, encoded, strict=True):
        used += len(raw) + 1
        if used > excerpt_bytes:
            break
        kept.append(record)
    row = QuarantinedBatch(
        id=batch_id,
        baseline=baseline,
        n_rows=len(records),
        payload={
            "records": kept,
            "truncated": len(kept) < len(records),
            "n_records": len(records),
            "bytes": len(whole),
            "sha256": hashlib.sha256(whole).hexdigest(),
        },
        violations=violations[:max_violations],
    )
    session.add(row)
    session.flush()
    return row


def get_quarantined(*, session: Session, batch_id: str) -> QuarantinedBatch | None:
    """Return a quarantined batch, or None."""
    return session.get(QuarantinedBatch, batch_id)


def get_prediction(*, session: Session, prediction_id: str) -> Prediction | None:
    """Return a logged prediction, or None."""
    return session.get(Prediction, prediction_id)


def get_prediction_or_raise(*, session: Session, prediction_id: str) -> Prediction:
    """Return a logged prediction.

    Raises
    ------
    NotFound
        If no prediction has that id.
    """
    row = get_prediction(session=session, prediction_id=prediction_id)
    if row is None:
        raise NotFound(f"Prediction {prediction_id!r} does not exist on this node.")
    return row


def set_attributions(
    *, session: Session, prediction_id: str, attributions: dict[str, Any], at: datetime
) -> None:
    """Store the explanation of a prediction computed after its response (flush only)."""
    row = get_prediction_or_raise(session=session, prediction_id=prediction_id)
    row.attributions = attributions
    row.explained_at = at
    session.flush()


def explanation_status(row: Prediction) -> str:
    """Return ``ready``, ``pending``, ``off`` or ``unavailable`` for a logged prediction."""
    if row.attributions is not None:
        return "ready" if row.attributions.get("method") != "none" else "unavailable"
    return str(row.outputs.get("explanation", "pending"))


def to_read(row: Prediction) -> PredictionRead:
    """Convert a row into the API shape."""
    return PredictionRead(
        prediction_id=row.id,
        batch_id=row.batch_id,
        baseline=row.baseline,
        score=float(row.outputs["score"]),
        label=row.outputs.get("label"),
        model_name=row.model_name,
        model_version=row.model_version,
        served_by=row.served_by,
        fallback=row.fallback,
        role=row.role,
        latency_ms=row.latency_ms,
        explanation=explanation_status(row),
        attributions=row.attributions,
        created_at=row.created_at,
    )


def to_detail(row: Prediction) -> PredictionDetail:
    """Convert a row into the detailed API shape (with inputs, features, outputs)."""
    return PredictionDetail(
        **to_read(row).model_dump(),
        inputs=row.inputs,
        features=row.features,
        outputs=row.outputs,
    )


def create_feedback(*, session: Session, feedback_in: FeedbackCreate) -> Feedback:
    """Store an operator's verdict and queue its summary for the hub; commits once.

    Only the summary leaves the plant (no raw inputs): the verdict, the label, the model
    version that made the call and its score.

    Raises
    ------
    NotFound
        If the prediction does not exist.
    """
    prediction = get_prediction_or_raise(session=session, prediction_id=feedback_in.prediction_id)
    row = Feedback(
        prediction_id=prediction.id,
        verdict=feedback_in.verdict,
        true_label=feedback_in.true_label,
        failure_type=feedback_in.failure_type,
        operator=feedback_in.operator,
        comment=feedback_in.comment,
    )
    session.add(row)
    session.flush()
    outbox_service.enqueue(
        session=session,
        stream=FEEDBACK_STREAM,
        kind="feedback.verdict",
        key=f"feedback-{prediction.id}-{row.id}",
        payload={
            "prediction_id": prediction.id,
            "baseline": prediction.baseline,
            "model_name": prediction.model_name,
            "model_version": prediction.model_version,
            "served_by": prediction.served_by,
            "score": float(prediction.outputs["score"]),
            "verdict": row.verdict,
            "true_label": row.true_label,
            "failure_type": row.failure_type,
            "predicted_at": prediction.created_at.isoformat(),
            "reported_at": utcnow().isoformat(),
        },
    )
    session.commit()
    return row


def list_feedback(*, session: Session, prediction_id: str | None = None) -> list[Feedback]:
    """Return feedback rows, oldest first (the labels monitoring joins on)."""
    query = select(Feedback).order_by(Feedback.id)
    if prediction_id is not None:
        query = query.where(Feedback.prediction_id == prediction_id)
    return list(session.execute(query).scalars())


def enqueue_alert(*, session: Session, kind: str, payload: dict[str, Any]) -> None:
    """Queue an alert for the hub in the caller's transaction (flush only)."""
    outbox_service.enqueue(
        session=session, stream=ALERT_STREAM, kind=f"alert.{kind}", payload=payload
    )


def enqueue_rollout_event(*, session: Session, kind: str, payload: dict[str, Any]) -> None:
    """Queue a rollout event (started, promoted, rolled back) for the hub (flush only)."""
    outbox_service.enqueue(
        session=session, stream=ROLLOUT_STREAM, kind=f"rollout.{kind}", payload=payload
    )
