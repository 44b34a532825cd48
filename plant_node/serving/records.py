"""Read access to the prediction log and operator feedback for other domains (keyword-only).

Monitoring reads what serving logged through these functions, never through serving's
tables: which champion model versions have logged predictions, their log rows in time
order (bounded batches that never split one timestamp), and the feedback on them. Rows
come back as :class:`LogRow` tuples holding only what monitoring reads; nothing here
writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from plant_node.serving.models import Feedback, Prediction


@dataclass(frozen=True)
class LoggedVersion:
    """A champion model version with logged predictions.

    Parameters
    ----------
    baseline, model_name, model_version
        What served.
    classifier
        Its outputs carry a thresholded ``label``.
    windowed
        Its inputs carry a window of ``cycles`` per unit (C-MAPSS).
    """

    baseline: str
    model_name: str
    model_version: str
    classifier: bool
    windowed: bool


class LogRow(NamedTuple):
    """One logged prediction as monitoring reads it."""

    id: str
    created_at: datetime
    reading: str | None  # JSON of the newest reading (a windowed model's last cycle)
    unit: Any
    score: Any
    predicted_class: Any
    latency_ms: float


def logged_versions(*, session: Session) -> list[LoggedVersion]:
    """Return every (baseline, model version) that logged champion, non-fallback predictions."""
    query = (
        select(Prediction.baseline, Prediction.model_name, Prediction.model_version)
        .where(Prediction.role == "champion", Prediction.fallback.is_(False))
        .distinct()
    )
    out = []
    for baseline, name, version in session.execute(query).all():
        inputs, outputs = session.execute(
            select(Prediction.inputs, Prediction.outputs)
            .where(Prediction.baseline == baseline, Prediction.model_version == version)
            .limit(1)
        ).one()
        out.append(LoggedVersion(baseline, name, version, "label" in outputs, "cycles" in inputs))
    return sorted(out, key=lambda v: (v.baseline, v.model_version))


def _log_query(version: LoggedVersion) -> Any:
    # SQLite pulls the newest reading out of each JSON row (a C-MAPSS row holds its whole
    # window): parsing only that in Python keeps a 100k-row read at a few seconds.
    reading, unit = ("$.cycles[#-1]", "$.unit") if version.windowed else ("$", "$.type")
    return (
        select(
            Prediction.id,
            Prediction.created_at,
            func.json_extract(Prediction.inputs, reading).label("reading"),
            func.json_extract(Prediction.inputs, unit).label("unit"),
            func.json_extract(Prediction.outputs, "$.score").label("score"),
            func.json_extract(Prediction.outputs, "$.label").label("predicted_class"),
            Prediction.latency_ms,
        )
        .where(
            Prediction.baseline == version.baseline,
            Prediction.model_version == version.model_version,
            Prediction.role == "champion",
            Prediction.fallback.is_(False),
        )
        .order_by(Prediction.created_at, Prediction.id)
    )


def _rows(session: Session, query: Any) -> list[LogRow]:
    return [LogRow(*r) for r in session.execute(query).all()]


def first_log_rows(*, session: Session, version: LoggedVersion, n: int) -> list[LogRow]:
    """Return the version's first ``n`` log rows, plus the rest of the last row's timestamp."""
    rows = _rows(session, _log_query(version).limit(n))
    if len(rows) == n:  # the whole request batch of the n-th row belongs with it
        rows = _rows(session, _log_query(version).where(Prediction.created_at <= rows[-1][1]))
    return rows


def log_batch(
    *, session: Session, version: LoggedVersion, after: datetime | None, limit: int
) -> tuple[list[LogRow], bool]:
    """Return up to ``limit`` log rows after ``after``, never splitting the rows of one timestamp.

    Returns
    -------
    tuple[list[LogRow], bool]
        The rows, and whether the limit was hit (more rows may follow).
    """
    query = _log_query(version)
    if after is not None:
        query = query.where(Prediction.created_at > after)
    rows = _rows(session, query.limit(limit))
    if len(rows) < limit:
        return rows, False
    last = rows[-1].created_at
    kept = [r for r in rows if r.created_at != last]
    if kept:
        return kept, True
    # one timestamp holds more rows than a batch: take all of them
    return _rows(session, _log_query(version).where(Prediction.created_at == last)), True


def log_rows_between(
    *, session: Session, version: LoggedVersion, start: datetime, end: datetime
) -> list[LogRow]:
    """Return the version's log rows with ``start <= created_at <= end``."""
    query = _log_query(version).where(Prediction.created_at >= start, Prediction.created_at <= end)
    return _rows(session, query)


def feedback_for_predictions(
    *, session: Session, prediction_ids: Sequence[str]
) -> list[tuple[str, str, str | None]]:
    """Return ``(prediction_id, verdict, true_label)`` of the feedback on these predictions.

    In the order it was given, so a later verdict on the same prediction comes last.
    """
    out: list[tuple[str, str, str | None]] = []
    for start in range(0, len(prediction_ids), 500):
        query = (
            select(Feedback.prediction_id, Feedback.verdict, Feedback.true_label)
            .where(Feedback.prediction_id.in_(prediction_ids[start : start + 500]))
            .order_by(Feedback.id)
        )
        out.extend((str(p), str(v), t) for p, v, t in session.execute(query).all())
    return out


@dataclass(frozen=True)
class LoggedPrediction:
    """What another domain needs of one logged prediction.

    Parameters
    ----------
    id, baseline
        The prediction and what served it.
    classifier
        Its outputs carry a thresholded ``label``.
    """

    id: str
    baseline: str
    classifier: bool


def get_prediction(*, session: Session, prediction_id: str) -> LoggedPrediction | None:
    """Return a logged prediction, ``None`` if unknown."""
    row = session.get(Prediction, prediction_id)
    if row is None:
        return None
    return LoggedPrediction(row.id, row.baseline, "label" in row.outputs)


def last_cycles_of_unit(
    *, session: Session, unit: str, baseline: str | None = None
) -> dict[str, float | None]:
    """Return, per regressor baseline that logged ``unit``, the last cycle it predicted at."""
    query = (
        select(
            Prediction.baseline,
            func.max(func.json_extract(Prediction.inputs, "$.cycles[#-1].cycle")),
        )
        .where(cast(func.json_extract(Prediction.inputs, "$.unit"), String) == unit)
        .where(func.json_extract(Prediction.outputs, "$.label").is_(None))  # regressors only
        .group_by(Prediction.baseline)
    )
    if baseline is not None:
        query = query.where(Prediction.baseline == baseline)
    return {str(b): (None if c is None else float(c)) for b, c in session.execute(query).all()}


__all__ = [
    "LogRow",
    "LoggedPrediction",
    "get_prediction",
    "last_cycles_of_unit",
    "LoggedVersion",
    "feedback_for_predictions",
    "first_log_rows",
    "log_batch",
    "log_rows_between",
    "logged_versions",
]


class FeedbackRow(NamedTuple):
    """One operator verdict as retraining reads it."""

    id: int
    prediction_id: str
    model_version: str
    verdict: str
    failure_type: str | None
    created_at: datetime


def feedback_of_baseline(
    *, session: Session, baseline: str, since: datetime | None = None
) -> list[FeedbackRow]:
    """Operator feedback on a baseline's predictions (given at or after ``since``), oldest first."""
    query = (
        select(
            Feedback.id, Feedback.prediction_id, Prediction.model_version, Feedback.verdict,
            Feedback.failure_type, Feedback.created_at,
        )
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(Prediction.baseline == baseline)
        .order_by(Feedback.id)
    )
    if since is not None:
        query = query.where(Feedback.created_at >= since)
    return [FeedbackRow(*row) for row in session.execute(query).all()]


class ScoredRow(NamedTuple):
    """One champion prediction as the labelling queue ranks it."""

    id: str
    baseline: str
    model_version: str
    created_at: datetime
    score: float
    predicted_class: int | None
    members: list[float] | None  # ensemble members' outputs, when the model logs them


def recent_champion_predictions(
    *, session: Session, baseline: str | None = None, limit: int = 5000
) -> list[ScoredRow]:
    """Return the newest champion, non-fallback predictions (up to ``limit``), newest first."""
    query = (
        select(
            Prediction.id, Prediction.baseline, Prediction.model_version, Prediction.created_at,
            Prediction.outputs,
        )
        .where(Prediction.role == "champion", Prediction.fallback.is_(False))
        .order_by(Prediction.created_at.desc(), Prediction.id.desc())
        .limit(limit)
    )
    if baseline is not None:
        query = query.where(Prediction.baseline == baseline)
    out = []
    for pid, base, version, created, outputs in session.execute(query).all():
        label = outputs.get("label")
        members = outputs.get("members")
        out.append(
            ScoredRow(
                str(pid), str(base), str(version), created, float(outputs["score"]),
                None if label is None else int(label),
                [float(m) for m in members] if isinstance(members, list) else None,
            )
        )
    return out
