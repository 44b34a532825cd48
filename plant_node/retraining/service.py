"""The retraining service: trigger evidence from monitoring's records, firings, the queue.

Monitoring's chunks and alerts are read through ``plant_node.monitoring.service`` and the
prediction log and operator feedback through ``plant_node.serving.records``, never through
their tables. Nothing here imports nannyml, pandas or torch: the serving process mounts the
queue routes.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federation.errors import Conflict, InvalidInput, NotFound
from federation.schemas.retraining import MAX_EVIDENCE_KEYS, RetrainingCondition
from plant_node.db import utcnow
from plant_node.monitoring import service as monitoring_service
from plant_node.monitoring.schemas import ChunkRead, OutcomeBatch, QaVerdict
from plant_node.outbox import service as outbox_service
from plant_node.retraining.models import LineSignal, QueueLabel, RetrainingFiring
from plant_node.retraining.schemas import (
    FiringRead,
    LabelIn,
    LabelRead,
    LineSignalIn,
    LineSignalRead,
    QueueItem,
    QueuePage,
)
from plant_node.serving import records as serving_records
from policies.evaluation import Verdict, check_gate
from policies.evidence import Evidence
from policies.retraining import (
    DriftSustained,
    EstimatedMetricWorse,
    NewFailureType,
    OperatorFlags,
    ProductMixChange,
    RetrainingPolicy,
    Schedule,
)

#: Outbox stream and event kind of retraining requests (``federation.schemas.retraining``).
STREAM = "retraining"
KIND = "retraining.requested"
MAX_CHUNKS = 100_000


def load_policy(ref_or_path: str) -> RetrainingPolicy:
    """Load the node's retraining policy: a standard ref (``retraining-default@1``) or a file.

    Raises
    ------
    InvalidInput
        The document is not a valid ``retraining`` policy.
    """
    from policies.library import standard_document
    from policies.parsing import PolicyValidationError, parse_policy

    try:
        path = Path(ref_or_path)
        if path.suffix in {".yaml", ".yml", ".json"} or path.exists():
            doc = parse_policy(path.read_bytes())
        else:
            doc = standard_document(ref_or_path)
    except (PolicyValidationError, KeyError, OSError) as exc:
        raise InvalidInput(f"retraining policy {ref_or_path!r}: {exc}") from exc
    if not isinstance(doc, RetrainingPolicy):
        raise InvalidInput(f"policy {ref_or_path!r} is a {doc.kind.value} policy, not retraining")
    return doc


@dataclass(frozen=True)
class Served:
    """A baseline's current champion as monitoring saw it: its chunks, oldest first."""

    baseline: str
    model_name: str
    model_version: str
    chunks: list[ChunkRead]


def champions(*, session: Session) -> list[Served]:
    """Per baseline, the model version with the newest monitored chunk."""
    by_version: dict[tuple[str, str], list[ChunkRead]] = defaultdict(list)
    for chunk in monitoring_service.list_chunks(session=session, limit=MAX_CHUNKS):
        by_version[(chunk.baseline, chunk.model_version)].append(chunk)
    newest: dict[str, Served] = {}
    for (baseline, version), chunks in by_version.items():
        chunks.sort(key=lambda c: c.chunk)
        current = newest.get(baseline)
        if current is None or chunks[-1].end > current.chunks[-1].end:
            newest[baseline] = Served(baseline, chunks[-1].model_name, version, chunks)
    return [newest[b] for b in sorted(newest)]


def _metric_values(chunks: Sequence[ChunkRead], metric: str, kind: str) -> list[float]:
    out = []
    for chunk in chunks:
        for m in chunk.performance:
            value = getattr(m, kind) if m.metric == metric else None
            if value is not None and math.isfinite(value):
                out.append(float(value))
    return out


def _last_firing(
    session: Session, baseline: str, version: str, trigger: str | None = None
) -> RetrainingFiring | None:
    query = select(RetrainingFiring).where(
        RetrainingFiring.baseline == baseline, RetrainingFiring.model_version == version
    )
    if trigger is not None:
        query = query.where(RetrainingFiring.trigger == trigger)
    return session.execute(
        query.order_by(RetrainingFiring.fired_at.desc()).limit(1)
    ).scalar_one_or_none()


def _latest_cron_time(cron: str, after: datetime, now: datetime) -> datetime | None:
    """Return the latest time the cron expression fired in ``(after, now]``, if any."""
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron, timezone="UTC")
    latest = None
    t = trigger.get_next_fire_time(None, after + timedelta(seconds=1))
    for _ in range(100_000):
        if t is None or t > now:
            break
        latest = t
        t = trigger.get_next_fire_time(t, t + timedelta(seconds=1))
    return latest


@dataclass
class TriggerCheck:
    """One trigger checked on one baseline: its verdict, and the firing if it fired."""

    trigger: str
    condition: str
    baseline: str
    model_version: str
    verdict: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    refusal: str | None = None
    firing: FiringRead | None = None
    new: bool = False  # the firing was made by this evaluation (not found again)

    @property
    def fired(self) -> bool:
        """Whether a request was queued (new or found again) for this check."""
        return self.firing is not None


def _evidence(
    session: Session,
    served: Served,
    trigger: Any,
    *,
    now: datetime,
    metric_chunks: int,
    reference_chunks: int,
    known_failure_types: Sequence[str],
) -> tuple[dict[str, Any], str]:
    """Return the evidence one trigger reads, and the basis its firing id is derived from."""
    chunks = served.chunks
    newest = chunks[-1]
    since = _last_firing(session, served.baseline, served.model_version)
    since_at = since.fired_at if since is not None else None
    new_labels = sum(c.n_labels for c in chunks if since_at is None or c.end > since_at)
    values: dict[str, Any] = {"labels.new": new_labels}
    basis = f"chunk{newest.chunk}"
    if isinstance(trigger, DriftSustained):
        sustained = 0
        for alert in monitoring_service.list_alerts(
            session=session, status="open", baseline=served.baseline, limit=1000
        ):
            if alert.model_version == served.model_version and alert.kind == "drift":
                sustained = max(sustained, newest.chunk - alert.since_chunk + 1)
        values["drift.sustained_chunks"] = sustained
    elif isinstance(trigger, EstimatedMetricWorse):
        m = trigger.metric
        recent = _metric_values(chunks[-metric_chunks:], m, "estimated")
        ref_chunks = chunks[:reference_chunks]
        reference = _metric_values(ref_chunks, m, "realized") or _metric_values(
            ref_chunks, m, "estimated"
        )
        if recent:
            values[f"estimated.{m}"] = statistics.fmean(recent)
        if reference and len(chunks) > reference_chunks:
            values[f"reference.{m}"] = statistics.median(reference)
    elif isinstance(trigger, NewFailureType | OperatorFlags):
        feedback = serving_records.feedback_of_baseline(session=session, baseline=served.baseline)
        if isinstance(trigger, OperatorFlags):
            start = now - timedelta(seconds=trigger.window_s)
            flagged = [
                f for f in feedback
                if f.verdict == "wrong" and start <= f.created_at <= now
            ]  # fmt: skip
            values["operator.flagged_errors"] = len(flagged)
            basis = f"feedback{flagged[-1].id}" if flagged else basis
        else:
            known = set(known_failure_types)
            if not known:
                first = chunks[0].start
                known = {
                    f.failure_type for f in feedback if f.created_at < first and f.failure_type
                }
            new = sorted(
                {
                    f.failure_type for f in feedback
                    if f.failure_type and f.model_version == served.model_version
                    and f.failure_type not in known
                }
            )  # fmt: skip
            values["outcomes.new_failure_types"] = len(new)
            basis = "types:" + hashlib.sha256(",".join(new).encode()).hexdigest()[:16]
    elif isinstance(trigger, ProductMixChange):
        last = _last_firing(session, served.baseline, served.model_version, trigger.name)
        after = last.fired_at if last is not None else chunks[0].start
        query = select(LineSignal).where(
            LineSignal.kind == "product_mix_change",
            LineSignal.created_at > after,
            (LineSignal.baseline.is_(None)) | (LineSignal.baseline == served.baseline),
        )
        signal = session.execute(query.order_by(LineSignal.id.desc()).limit(1)).scalar()
        values["line.product_mix_changed"] = signal is not None
        basis = f"signal{signal.id}" if signal is not None else basis
    elif isinstance(trigger, Schedule):
        last = _last_firing(session, served.baseline, served.model_version, trigger.name)
        after = last.fired_at if last is not None else chunks[0].start
        due = _latest_cron_time(trigger.cron, after, now)
        values["schedule.due"] = due is not None
        basis = f"cron{due.isoformat()}" if due is not None else basis
    return values, basis


def _firing_id(plant: str, served: Served, trigger: str, basis: str) -> str:
    raw = f"{plant}|{served.baseline}|{served.model_version}|{trigger}|{basis}"
    return "rt_" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def _wire_evidence(values: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in sorted(values.items()):
        if isinstance(value, bool | int | float) and math.isfinite(float(value)):
            out[key] = float(value)
    return dict(list(out.items())[:MAX_EVIDENCE_KEYS])


def evaluate(
    *,
    session: Session,
    policy: RetrainingPolicy,
    plant_id: str,
    now: datetime | None = None,
    metric_chunks: int = 3,
    reference_chunks: int = 4,
    known_failure_types: Sequence[str] = (),
) -> list[TriggerCheck]:
    """Check every trigger on every baseline's champion; persist and queue what fires.

    A trigger fires when its gate passes (with at least ``min_evidence`` new labels) and
    neither its cooldown nor its daily budget holds it. Each firing is stored with its
    evidence and a ``retraining.requested`` message queued on the outbox stream
    ``retraining`` in the same transaction; its id is derived from what it fired on, so a
    second evaluation of the same records finds it instead of queueing it again. Commits.

    Parameters
    ----------
    session
        Open session.
    policy
        The node's retraining policy.
    plant_id
        This node's plant (evidence subject, and part of each firing id).
    now
        The evaluation time (UTC); the clock by default.
    metric_chunks
        Newest chunks whose estimated metric is averaged.
    reference_chunks
        The champion's first chunks, whose realized metric is its reference.
    known_failure_types
        Failure types the champion was trained on (empty: those in feedback before it served).

    Returns
    -------
    list[TriggerCheck]
        One check per (baseline, trigger).
    """
    now = now or utcnow()
    checks: list[TriggerCheck] = []
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for served in champions(session=session):
        for trigger in policy.triggers:
            values, basis = _evidence(
                session, served, trigger, now=now, metric_chunks=metric_chunks,
                reference_chunks=reference_chunks, known_failure_types=known_failure_types,
            )
            result = check_gate(trigger.gate(), Evidence(plant=plant_id, values=values))
            check = TriggerCheck(
                trigger.name, trigger.kind, served.baseline, served.model_version,
                result.verdict.value, result.message, values,
            )
            checks.append(check)
            if result.verdict is not Verdict.PASS:
                continue
            firing_id = _firing_id(plant_id, served, trigger.name, basis)
            existing = session.get(RetrainingFiring, firing_id)
            if existing is not None:
                check.firing = FiringRead.model_validate(existing)
                continue
            last = _last_firing(session, served.baseline, served.model_version, trigger.name)
            fired_today = session.execute(
                select(func.count()).select_from(RetrainingFiring).where(
                    RetrainingFiring.trigger == trigger.name,
                    RetrainingFiring.baseline == served.baseline,
                    RetrainingFiring.fired_at >= day_start,
                )
            ).scalar_one()
            since_last = None if last is None else (now - last.fired_at).total_seconds()
            check.refusal = trigger.refusal(since_last, int(fired_today))
            if check.refusal is not None:
                continue
            firing = RetrainingFiring(
                id=firing_id, baseline=served.baseline, model_name=served.model_name,
                model_version=served.model_version, policy=policy.ref, trigger=trigger.name,
                condition=trigger.kind, fired_at=now, basis=basis[:64], evidence=values,
                labelled_window=int(values.get("labels.new", 0)), summary=result.message[:2000],
            )
            session.add(firing)
            session.flush()
            outbox_service.enqueue(
                session=session, stream=STREAM, kind=KIND, key=firing_id,
                payload=request_payload(firing),
            )
            check.firing = FiringRead.model_validate(firing)
            check.new = True
    session.commit()
    return checks


def request_payload(firing: RetrainingFiring) -> dict[str, Any]:
    """Return the queued request: ``RetrainingRequestCreate`` with the version *label*.

    The node knows its champion by registry name and version label; the deliverer resolves
    the label to the registry's ``version_id`` when it sends (the hub is reachable then).
    """
    return {
        "id": firing.id,
        "model": firing.model_name,
        "version": firing.model_version,
        "policy": firing.policy,
        "trigger": firing.trigger,
        "condition": RetrainingCondition(firing.condition).value,
        "fired_at": firing.fired_at.isoformat(),
        "evidence": _wire_evidence(firing.evidence),
        "labelled_window": firing.labelled_window,
        "note": firing.summary[:2000],
    }


def list_firings(
    *, session: Session, baseline: str | None = None, limit: int = 50
) -> list[FiringRead]:
    """Return the firings, newest first."""
    query = select(RetrainingFiring).order_by(RetrainingFiring.fired_at.desc())
    if baseline is not None:
        query = query.where(RetrainingFiring.baseline == baseline)
    return [FiringRead.model_validate(r) for r in session.execute(query.limit(limit)).scalars()]


def add_line_signal(*, session: Session, signal: LineSignalIn) -> LineSignalRead:
    """Store a line's recipe / product-mix change; commits."""
    row = LineSignal(
        kind=signal.kind, value=signal.value, baseline=signal.baseline, note=signal.note
    )
    session.add(row)
    session.commit()
    return LineSignalRead.model_validate(row)


# -- the active-learning queue ----------------------------------------------------------------

FLAG_PRIORITY = 2.0


def _threshold(rows: Sequence[serving_records.ScoredRow]) -> float:
    """Return the decision threshold of a classifier: midway between its two classes' scores."""
    zeros = [r.score for r in rows if r.predicted_class == 0]
    ones = [r.score for r in rows if r.predicted_class == 1]
    if zeros and ones and max(zeros) <= min(ones):
        return (max(zeros) + min(ones)) / 2.0
    return 0.5


def uncertainty(row: serving_records.ScoredRow, threshold: float) -> float | None:
    """How unsure the model was: 1 at the threshold, 0 at certainty; members' spread else.

    Parameters
    ----------
    row
        A logged prediction.
    threshold
        The classifier's decision threshold.

    Returns
    -------
    float | None
        For a classifier, ``1 - |p - t| / max(t, 1 - t)`` on the calibrated probability
        ``p``; for a regressor, the ensemble members' population standard deviation; ``None``
        for a regressor that logged no members.
    """
    if row.predicted_class is not None:
        span = max(threshold, 1.0 - threshold)
        return max(0.0, 1.0 - abs(row.score - threshold) / span)
    if row.members and len(row.members) > 1:
        return float(statistics.pstdev(row.members))
    return None


def labelled_today(*, session: Session, now: datetime | None = None) -> int:
    """Labels given through the queue since midnight UTC."""
    now = now or utcnow()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(
        session.execute(
            select(func.count()).select_from(QueueLabel).where(QueueLabel.created_at >= start)
        ).scalar_one()
    )


def rank(
    *, session: Session, baseline: str | None = None, window: int = 5000
) -> list[QueueItem]:
    """Every unlabelled champion prediction of the newest ``window``, highest priority first.

    Operator flags (a ``wrong`` verdict without the true label) come first, then the most
    uncertain predictions, then the rest newest first.
    """
    rows = serving_records.recent_champion_predictions(
        session=session, baseline=baseline, limit=window
    )
    if not rows:
        return []
    ids = [r.id for r in rows]
    labelled = set(monitoring_service.labels_for_predictions(session=session, prediction_ids=ids))
    labelled |= set(
        session.execute(
            select(QueueLabel.prediction_id).where(QueueLabel.prediction_id.in_(ids))
        ).scalars()
    )
    flagged = {
        pid for pid, verdict, true_label in serving_records.feedback_for_predictions(
            session=session, prediction_ids=ids
        ) if verdict == "wrong" and true_label is None
    }  # fmt: skip
    thresholds: dict[tuple[str, str], float] = {}
    groups: dict[tuple[str, str], list[serving_records.ScoredRow]] = defaultdict(list)
    for r in rows:
        groups[(r.baseline, r.model_version)].append(r)
    for key, group in groups.items():
        thresholds[key] = _threshold(group)
    items = []
    for r in rows:
        if r.id in labelled:
            continue
        u = uncertainty(r, thresholds[(r.baseline, r.model_version)])
        if r.id in flagged:
            reason, priority = "operator_flag", FLAG_PRIORITY + (u if u is not None else 0.0)
        elif u is not None:
            reason, priority = "uncertainty", u
        else:
            reason, priority = "unranked", 0.0
        items.append(
            QueueItem(
                prediction_id=r.id, baseline=r.baseline, model_version=r.model_version,
                created_at=r.created_at, score=r.score, reason=reason, priority=priority,
                uncertainty=u,
            )
        )
    items.sort(key=lambda i: (-i.priority, -i.created_at.timestamp()))
    return items


def queue_page(
    *,
    session: Session,
    budget_per_day: int,
    baseline: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> QueuePage:
    """Return a page of the queue, with what remains of today's label budget."""
    items = rank(session=session, baseline=baseline)
    today = labelled_today(session=session)
    return QueuePage(
        items=items[offset : offset + limit], total=len(items), offset=offset, limit=limit,
        budget_per_day=budget_per_day, labelled_today=today,
        budget_remaining=max(0, budget_per_day - today),
    )


def give_label(
    *, session: Session, prediction_id: str, body: LabelIn, budget_per_day: int
) -> LabelRead:
    """Record a label from the queue as a QA outcome (monitoring sees it too); commits.

    Raises
    ------
    NotFound
        Unknown prediction.
    Conflict
        Today's label budget is spent, or the prediction has a label already.
    InvalidInput
        A label of the wrong type for the model (monitoring's check).
    """
    prediction = serving_records.get_prediction(session=session, prediction_id=prediction_id)
    if prediction is None:
        raise NotFound(f"unknown prediction id {prediction_id!r}")
    today = labelled_today(session=session)
    if today >= budget_per_day:
        raise Conflict(
            f"today's label budget ({budget_per_day}) is spent; the queue opens again at "
            "midnight UTC"
        )
    if session.get(QueueLabel, prediction_id) is not None:
        raise Conflict(f"prediction {prediction_id!r} is labelled already")
    ranked = {i.prediction_id: i for i in rank(session=session, baseline=prediction.baseline)}
    item = ranked.get(prediction_id)
    row = QueueLabel(
        prediction_id=prediction_id, baseline=prediction.baseline, label=float(body.label),
        priority=None if item is None else item.priority,
        reason="unqueued" if item is None else item.reason,
    )
    session.add(row)
    session.flush()
    try:  # validates the label and commits both rows
        monitoring_service.create_outcomes(
            session=session,
            batch=OutcomeBatch(outcomes=[QaVerdict(prediction_id=prediction_id, label=body.label)]),
        )
    except BaseException:
        session.rollback()
        raise
    out = LabelRead.model_validate(row)
    out.budget_remaining = max(0, budget_per_day - today - 1)
    return out
