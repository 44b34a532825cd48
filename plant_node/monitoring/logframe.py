"""The prediction log as the monitoring engine's frame: a row per logged prediction, labels joined.

Rows come from the serving domain's read functions (:mod:`plant_node.serving.records`);
labels from operator feedback (serving), failure records and QA verdicts
(:mod:`.service`). The most specific label wins: QA verdict, then failure record, then
feedback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from plant_node.monitoring import service
from plant_node.serving import records as serving_records
from plant_node.serving.records import LogRow


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def log_frame(
    session: Session,
    *,
    baseline: str,
    features: Sequence[str],
    classifier: bool,
    rows: Sequence[LogRow],
    rul_cap: float,
) -> pd.DataFrame:
    """Turn log rows into the monitor's frame and join every label that has arrived.

    Parameters
    ----------
    session
        Node database session.
    baseline
        The rows' baseline (failure records are per baseline).
    features
        Monitored features, read from each row's newest reading (NaN when absent).
    classifier
        The model is a classifier (its rows carry a predicted class).
    rows
        From :mod:`plant_node.serving.records`.
    rul_cap
        Cap of the remaining-life label derived from a failure record.

    Returns
    -------
    pandas.DataFrame
        One row per prediction with ``label`` (NaN until one arrived).
    """
    recs = []
    for r in rows:
        reading = json.loads(r.reading) if r.reading else {}
        rec: dict[str, Any] = {
            "prediction_id": r.id,
            "timestamp": _naive(r.created_at),
            "unit_id": str(r.unit if r.unit is not None else "line"),
            "cycle": float(reading.get("cycle", math.nan)),
            "prediction": float(r.score),
            "latency_ms": float(r.latency_ms),
        }
        for f in features:
            v = reading.get(f)
            rec[f] = float(v) if isinstance(v, int | float) else math.nan
        if classifier:
            rec["predicted_class"] = int(r.predicted_class)
        recs.append(rec)
    frame = pd.DataFrame.from_records(recs)
    if frame.empty:
        return frame
    frame["label"] = math.nan
    ids = frame["prediction_id"].tolist()
    # operator feedback first, then failure records, then QA verdicts (most specific wins)
    fb = _feedback_labels(session, ids, classifier=classifier, frame=frame)
    if fb:
        frame["label"] = frame["prediction_id"].map(fb).astype(float)
    if not classifier:
        failures = service.failures_for_units(
            session=session, baseline=baseline, units=frame["unit_id"].unique().tolist()
        )
        failed_at = frame["unit_id"].map(failures).astype(float)
        rul = (failed_at - frame["cycle"]).clip(upper=rul_cap)
        frame["label"] = frame["label"].where(~(rul >= 0), rul)
    qa = service.labels_for_predictions(session=session, prediction_ids=ids)
    if qa:
        verdict = frame["prediction_id"].map(qa).astype(float)
        frame["label"] = frame["label"].where(verdict.isna(), verdict)
    return frame


def _feedback_labels(
    session: Session, ids: list[str], *, classifier: bool, frame: pd.DataFrame
) -> dict[str, float]:
    """Return operator feedback as labels.

    The true label if given; else, for a classifier, "right" keeps the predicted class and
    "wrong" flips it.
    """
    out: dict[str, float] = {}
    predicted = (
        dict(zip(frame["prediction_id"], frame["predicted_class"], strict=True))
        if classifier
        else {}
    )
    for pid, verdict, true_label in serving_records.feedback_for_predictions(
        session=session, prediction_ids=ids
    ):
        value: float | None = None
        if true_label is not None:
            try:
                value = float(true_label)
            except ValueError:
                value = None
            if classifier and value not in (0.0, 1.0):
                value = None
        if value is None and classifier:
            cls = float(predicted[pid])
            value = cls if verdict == "right" else 1.0 - cls
        if value is not None:
            out[pid] = value
    return out


def with_columns(
    read: Callable[[str | None], pd.DataFrame], *, features: Sequence[str], classifier: bool
) -> Callable[[str | None], pd.DataFrame]:
    """Wrap a reader so an empty read still has the monitor's columns."""

    def wrapped(after: str | None) -> pd.DataFrame:
        frame: pd.DataFrame = read(after)
        if frame.empty:
            cols = ["prediction_id", "timestamp", "unit_id", "cycle", "prediction", "latency_ms",
                    *features, "label"]  # fmt: skip
            if classifier:
                cols.append("predicted_class")
            frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
            frame["timestamp"] = pd.Series(dtype="datetime64[ns]")
        return frame

    return wrapped


__all__ = ["log_frame", "with_columns"]
