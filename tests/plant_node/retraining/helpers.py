"""Monitoring records, predictions and feedback written the way the node's domains write them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from plant_node.monitoring import service as monitoring_service
from plant_node.serving.models import Feedback, Prediction

T0 = datetime(2026, 11, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)


def add_chunks(
    session: Session,
    estimated: list[float],
    *,
    baseline: str = "cmapss",
    version: str = "1.0",
    metric: str = "rmse",
    realized: list[float | None] | None = None,
    n_labels: int = 100,
    first: int = 0,
) -> None:
    """One hourly chunk per estimate, starting at chunk ``first``."""
    for i, est in enumerate(estimated):
        k = first + i
        real = None if realized is None else realized[i]
        perf = [{"metric": metric, "estimated": est, "lower": est * 0.9, "upper": est * 1.1,
                 "realized": real, "n_labels": n_labels, "unreliable": []}]  # fmt: skip
        monitoring_service.upsert_chunk(
            session=session,
            values={
                "baseline": baseline, "model_name": f"{baseline}-model", "model_version": version,
                "chunk": k, "start": T0 + k * HOUR, "end": T0 + (k + 1) * HOUR, "n_rows": 500,
                "metric": metric, "estimated": est, "lower": est * 0.9, "upper": est * 1.1,
                "realized": real, "n_labels": n_labels, "performance": perf,
                "multivariate_drift": None, "top_drift": [], "integrity": {}, "latency_ms": {},
            },
        )  # fmt: skip
    session.commit()


def add_drift_alert(
    session: Session, since_chunk: int, *, baseline: str = "cmapss", version: str = "1.0"
) -> None:
    """An open feature-drift alert since ``since_chunk``."""
    monitoring_service.raise_alert(
        session=session,
        values={
            "baseline": baseline, "model_version": version, "key": "drift:features",
            "kind": "drift",
            "since": T0 + since_chunk * HOUR, "since_chunk": since_chunk,
            "raised_chunk": since_chunk + 1, "value": 3.0, "worst_value": 3.0, "threshold": 1.0,
            "reference_mean": 0.5, "reference_std": 0.1, "sigmas": 25.0,
            "top_features": [["s11", 3.0]], "description": "s11 moved",
        },
    )  # fmt: skip
    session.commit()


def add_predictions(
    session: Session,
    scores: list[float],
    *,
    baseline: str = "ai4i",
    version: str = "1.0",
    threshold: float | None = 0.5,
    members: list[list[float]] | None = None,
    start: datetime = T0,
) -> list[str]:
    """Champion predictions, one second apart; classifiers carry ``label`` at ``threshold``."""
    ids = []
    for i, score in enumerate(scores):
        outputs: dict[str, Any] = {"score": score, "explanation": "off"}
        if threshold is not None:
            outputs["label"] = int(score >= threshold)
        if members is not None:
            outputs["members"] = members[i]
        pid = uuid.uuid4().hex
        ids.append(pid)
        session.add(
            Prediction(
                id=pid, batch_id=pid, baseline=baseline, model_name=f"{baseline}-model",
                model_version=version, served_by="current", fallback=False, role="champion",
                inputs={"unit": i}, features=None, outputs=outputs, attributions=None,
                latency_ms=1.0, created_at=start + timedelta(seconds=i),
            )
        )  # fmt: skip
    session.commit()
    return ids


def add_feedback(
    session: Session,
    prediction_id: str,
    *,
    verdict: str = "wrong",
    failure_type: str | None = None,
    at: datetime | None = None,
) -> None:
    """An operator's verdict on a prediction."""
    session.add(
        Feedback(
            prediction_id=prediction_id, verdict=verdict, failure_type=failure_type,
            created_at=at or datetime.now(UTC),
        )
    )
    session.commit()
