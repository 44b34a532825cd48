"""Retraining requests: storing them, reading them, and the pure decision by policy.

:func:`decide` is pure (no clock, no I/O): given the policy, the fired trigger, the request
and what the hub already holds about that trigger and that change, it returns the decision
with its reasons. :mod:`hub.retraining.flows` looks the facts up and records the result.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.errors import Conflict, Forbidden, InvalidInput, NotFound
from federation.schemas.retraining import (
    CandidateOutcome,
    RetrainingDecision,
    RetrainingRequestCreate,
    RetrainingRequestRead,
)
from hub.pagination import decode_token, encode_token
from hub.registry import service as registry_service
from hub.retraining.models import RetrainingRequest
from policies import Evidence, Verdict, check_gate
from policies.retraining import RetrainingPolicy, Trigger

#: How far back another plant's firing counts as "recent evidence of the same change".
RECENT_WINDOW = dt.timedelta(hours=24)


def subject(plant_id: str, request_id: str) -> str:
    """Return the audit subject of one request."""
    return f"plant/{plant_id}/retraining/{request_id}"


@dataclasses.dataclass(frozen=True)
class History:
    """What the hub already holds that bears on one request.

    Parameters
    ----------
    last_fired_at
        When this plant's same trigger last fired and was not refused (``None``: never).
    fired_today
        How many of this plant's same trigger's requests were accepted on the UTC day of
        the new one.
    other_plants
        Other plants whose requests for the same model and condition fired within
        :data:`RECENT_WINDOW` (their evidence shows the same change).
    """

    last_fired_at: dt.datetime | None
    fired_today: int
    other_plants: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The decision on one request, its reasons and what the evidence showed."""

    decision: RetrainingDecision
    reasons: list[str]
    plants: list[str]
    evaluation: dict[str, Any]


def _values(trigger: Trigger, request_in: RetrainingRequestCreate) -> dict[str, float | bool]:
    """Evidence values as the trigger's gate reads them (booleans for boolean thresholds)."""
    values: dict[str, float | bool] = dict(request_in.evidence)
    gate = trigger.gate()
    if isinstance(gate.threshold, bool) and gate.metric in values:
        values[gate.metric] = bool(values[gate.metric])
    return values


def in_utc(request_in: RetrainingRequestCreate) -> RetrainingRequestCreate:
    """Return the request with ``fired_at`` in UTC (a time without a zone is taken as UTC)."""
    fired = request_in.fired_at
    fired = fired.replace(tzinfo=dt.UTC) if fired.tzinfo is None else fired.astimezone(dt.UTC)
    return request_in.model_copy(update={"fired_at": fired})


def find_trigger(policy: RetrainingPolicy, name: str) -> Trigger | None:
    """Return the policy's trigger of that name, or ``None``."""
    return next((t for t in policy.triggers if t.name == name), None)


def decide(
    *,
    policy: RetrainingPolicy,
    trigger: Trigger,
    plant_id: str,
    request_in: RetrainingRequestCreate,
    history: History,
) -> Outcome:
    """Decide a request by policy; pure.

    The hub re-checks the trigger on the evidence the plant sent (it does not trust the
    node's verdict), then the trigger's cooldown and daily budget, then counts the plants
    showing the same change: at least ``federated_min_plants`` gives a federated campaign,
    fewer a local fine-tune at the requesting plant.
    """
    result = check_gate(
        trigger.gate(), Evidence(plant=plant_id, values=_values(trigger, request_in))
    )
    evaluation: dict[str, Any] = {
        "policy": policy.ref,
        "trigger": trigger.name,
        "verdict": result.verdict.value,
        "message": result.message,
        "fired": result.verdict is Verdict.PASS,
    }
    ref = f"(policy {policy.ref}, trigger {trigger.name})"
    labels = request_in.evidence.get("labels.new")
    if trigger.min_evidence and (labels is None or labels < trigger.min_evidence):
        shown = "missing" if labels is None else f"{labels:g}"
        return Outcome(
            RetrainingDecision.REFUSED,
            [f"not enough new labels: labels.new {shown} < {trigger.min_evidence} needed {ref}"],
            [], evaluation,
        )
    if result.verdict is not Verdict.PASS:
        return Outcome(
            RetrainingDecision.REFUSED,
            [f"the evidence does not fire the trigger: {result.message} {ref}"], [], evaluation,
        )
    since = (
        None if history.last_fired_at is None
        else (request_in.fired_at - history.last_fired_at).total_seconds()
    )
    refusal = trigger.refusal(since, history.fired_today)
    if refusal is not None:
        return Outcome(RetrainingDecision.REFUSED, [f"{refusal} {ref}"], [], evaluation)
    plants = sorted({plant_id, *history.other_plants})
    if len(plants) >= policy.federated_min_plants:
        return Outcome(
            RetrainingDecision.FEDERATED,
            [
                f"{len(plants)} plants show the same change ({', '.join(plants)}) within "
                f"{RECENT_WINDOW.total_seconds() / 3600:.0f} h; federated_min_plants "
                f"{policy.federated_min_plants} {ref}"
            ],
            plants, evaluation,
        )
    return Outcome(
        RetrainingDecision.LOCAL_FINE_TUNE,
        [
            f"{result.message}; only {len(plants)} plant(s) show the change, fewer than "
            f"federated_min_plants {policy.federated_min_plants} {ref}"
        ],
        plants, evaluation,
    )


def history_of(
    *, session: Session, plant_id: str, request_in: RetrainingRequestCreate
) -> History:
    """Look up what :func:`decide` needs about earlier requests (see :class:`History`)."""
    accepted = RetrainingRequest.decision != RetrainingDecision.REFUSED.value
    fired = request_in.fired_at
    last = session.scalar(
        select(RetrainingRequest.fired_at)
        .where(
            RetrainingRequest.plant_id == plant_id,
            RetrainingRequest.trigger == request_in.trigger,
            RetrainingRequest.model == request_in.model,
            RetrainingRequest.fired_at <= fired,
            accepted,
        )
        .order_by(RetrainingRequest.fired_at.desc())
        .limit(1)
    )
    day = dt.datetime(fired.year, fired.month, fired.day, tzinfo=dt.UTC)
    today = session.scalars(
        select(RetrainingRequest.id).where(
            RetrainingRequest.plant_id == plant_id,
            RetrainingRequest.trigger == request_in.trigger,
            RetrainingRequest.model == request_in.model,
            RetrainingRequest.fired_at >= day,
            RetrainingRequest.fired_at < day + dt.timedelta(days=1),
            accepted,
        )
    ).all()
    rows = session.execute(
        select(RetrainingRequest.plant_id, RetrainingRequest.evaluation).where(
            RetrainingRequest.plant_id != plant_id,
            RetrainingRequest.model == request_in.model,
            RetrainingRequest.condition == request_in.condition.value,
            RetrainingRequest.fired_at >= fired - RECENT_WINDOW,
            RetrainingRequest.fired_at <= fired + RECENT_WINDOW,
        )
    ).all()
    other_plants = tuple(sorted({p for p, ev in rows if isinstance(ev, dict) and ev.get("fired")}))
    return History(last_fired_at=last, fired_today=len(today), other_plants=other_plants)


def check_request(*, session: Session, plant_id: str, request_in: RetrainingRequestCreate) -> None:
    """Refuse a request for a model the plant does not run, or a version of another model.

    Raises
    ------
    NotFound
        When the plant or the version does not exist.
    Forbidden
        When the hub's assignments show the plant does not run ``model``.
    InvalidInput
        When ``version_id`` is not a version of ``model``.
    """
    registry_service.get_plant_or_raise(session=session, plant_id=plant_id)
    assignments = registry_service.list_assignments(session=session, plant_id=plant_id)
    if not any(a.model == request_in.model for a in assignments.items):
        raise Forbidden(
            f"Plant '{plant_id}' does not run model '{request_in.model}' (no alias of it is "
            "assigned to the plant), so it cannot request its retraining."
        )
    version = registry_service.get_version_or_raise(
        session=session, version_id=request_in.version_id
    )
    if version.model.name != request_in.model:
        raise InvalidInput(
            f"Version {version.id} is a version of '{version.model.name}', not of "
            f"'{request_in.model}'.",
            errors=[{"path": "version_id", "message": "not a version of this model"}],
        )


def find_request(*, session: Session, plant_id: str, request_id: str) -> RetrainingRequest | None:
    """Return the stored request of that plant and id, or ``None``."""
    return session.scalar(
        select(RetrainingRequest).where(
            RetrainingRequest.plant_id == plant_id, RetrainingRequest.request_id == request_id
        )
    )


def get_request_or_raise(*, session: Session, plant_id: str, request_id: str) -> RetrainingRequest:
    """Return the stored request of that plant and id.

    Raises
    ------
    NotFound
        When the plant never sent it.
    """
    row = find_request(session=session, plant_id=plant_id, request_id=request_id)
    if row is None:
        raise NotFound(f"Plant '{plant_id}' has no retraining request '{request_id}'.")
    return row


def same_request(row: RetrainingRequest, request_in: RetrainingRequestCreate) -> bool:
    """Whether a redelivered body is the stored one (the outbox resends it unchanged)."""
    return (
        row.model == request_in.model
        and row.version_id == request_in.version_id
        and row.policy_ref == request_in.policy
        and row.trigger == request_in.trigger
        and row.condition == request_in.condition.value
        and row.evidence == dict(request_in.evidence)
    )


def check_redelivery(row: RetrainingRequest, request_in: RetrainingRequestCreate) -> None:
    """Raise :class:`Conflict` when a request id is reused for a different request."""
    if not same_request(row, request_in):
        raise Conflict(
            f"Retraining request '{row.request_id}' of plant '{row.plant_id}' was already "
            "received with a different body; a request id names one request."
        )


def add_request(
    *, session: Session, plant_id: str, request_in: RetrainingRequestCreate, outcome: Outcome
) -> RetrainingRequest:
    """Add the decided request to the session (flushed, not committed)."""
    row = RetrainingRequest(
        plant_id=plant_id,
        request_id=request_in.id,
        model=request_in.model,
        version_id=request_in.version_id,
        policy_ref=request_in.policy,
        trigger=request_in.trigger,
        condition=request_in.condition.value,
        fired_at=request_in.fired_at,
        evidence=dict(request_in.evidence),
        labelled_window=request_in.labelled_window,
        note=request_in.note,
        decision=outcome.decision.value,
        reasons=outcome.reasons,
        plants=outcome.plants,
        evaluation=outcome.evaluation,
    )
    session.add(row)
    session.flush()
    return row


def to_read(row: RetrainingRequest) -> RetrainingRequestRead:
    """Return the wire entity of a stored request."""
    return RetrainingRequestRead(
        id=row.request_id,
        model=row.model,
        version_id=row.version_id,
        policy=row.policy_ref,
        trigger=row.trigger,
        condition=row.condition,
        fired_at=row.fired_at,
        evidence=row.evidence,
        labelled_window=row.labelled_window,
        note=row.note,
        plant_id=row.plant_id,
        received_at=row.received_at,
        decision=RetrainingDecision(row.decision),
        reasons=row.reasons,
        campaign_id=row.campaign_id,
        candidate_version_id=row.candidate_version_id,
        candidate_outcome=(
            CandidateOutcome(row.candidate_outcome) if row.candidate_outcome else None
        ),
        promotion_id=row.promotion_id,
    )


def list_requests(
    *,
    session: Session,
    plant_id: str | None,
    model: str | None,
    decision: RetrainingDecision | None,
    page_size: int,
    page_token: str | None,
) -> tuple[list[RetrainingRequest], str | None]:
    """One page of requests, newest first (by the hub's id), optionally filtered."""
    filters = {
        "plant_id": plant_id, "model": model, "decision": decision.value if decision else None
    }
    before = decode_token(page_token, filters, int)
    stmt = select(RetrainingRequest)
    if plant_id is not None:
        stmt = stmt.where(RetrainingRequest.plant_id == plant_id)
    if model is not None:
        stmt = stmt.where(RetrainingRequest.model == model)
    if decision is not None:
        stmt = stmt.where(RetrainingRequest.decision == decision.value)
    if before is not None:
        stmt = stmt.where(RetrainingRequest.id < before)
    rows = list(
        session.scalars(stmt.order_by(RetrainingRequest.id.desc()).limit(page_size + 1))
    )
    token = encode_token(rows[page_size - 1].id, filters) if len(rows) > page_size else None
    return rows[:page_size], token


def request_of_candidate(*, session: Session, version_id: int) -> RetrainingRequest | None:
    """Return the request whose retraining produced this version, or ``None``."""
    return session.scalar(
        select(RetrainingRequest)
        .where(RetrainingRequest.candidate_version_id == version_id)
        .order_by(RetrainingRequest.id.desc())
        .limit(1)
    )


def training_requests(*, session: Session) -> list[int]:
    """Return the ids of requests whose candidate is still training (oldest first)."""
    return list(
        session.scalars(
            select(RetrainingRequest.id)
            .where(RetrainingRequest.candidate_outcome == CandidateOutcome.TRAINING.value)
            .order_by(RetrainingRequest.id)
        )
    )


def get_by_id_or_raise(*, session: Session, row_id: int) -> RetrainingRequest:
    """Return a stored request by the hub's own id.

    Raises
    ------
    NotFound
        When there is no such row.
    """
    row = session.get(RetrainingRequest, row_id)
    if row is None:
        raise NotFound(f"No retraining request with hub id {row_id}.")
    return row


def compare_to_champion(
    candidate: dict[str, Any], champion: dict[str, Any]
) -> tuple[bool, list[str]]:
    """Compare a candidate's validation metrics with the champion's; pure.

    Every metric both report is compared in its own direction (lower is better for rmse,
    mae; higher for f1, auroc, ...). The candidate is no worse when no shared metric is
    worse; with no shared metric at all it fails closed. A sum over samples (PHM08's score)
    is compared per sample when both name their sample count, and skipped otherwise: the
    candidate is validated on the plant's newer, larger window, and a sum over more rows
    is larger without the model being worse.

    Returns
    -------
    tuple[bool, list[str]]
        Whether the candidate is no worse, and one line per compared metric.
    """
    from policies.evidence import EXTENSIVE_METRICS, SAMPLE_COUNT_KEYS, lower_is_better

    def count(metrics: dict[str, Any]) -> float | None:
        for key in SAMPLE_COUNT_KEYS:
            value = metrics.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
        return None

    lines: list[str] = []
    worse = False
    shared = sorted(
        k for k in candidate.keys() & champion.keys()
        if isinstance(candidate[k], int | float) and isinstance(champion[k], int | float)
        and not isinstance(candidate[k], bool) and k not in SAMPLE_COUNT_KEYS
    )
    n_new, n_old = count(candidate), count(champion)
    compared = 0
    for key in shared:
        new, old = float(candidate[key]), float(champion[key])
        if key in EXTENSIVE_METRICS:
            if n_new is None or n_old is None:
                lines.append(f"{key} not compared (a sum over samples, counts unknown)")
                continue
            new, old = new / n_new, old / n_old
            key = f"{key} per sample"
        compared += 1
        bad = new > old if lower_is_better(f"validation.{key}") else new < old
        worse = worse or bad
        lines.append(f"{key} {new:g} {'worse than' if bad else 'vs'} champion {old:g}")
    if not compared:
        return False, [*lines, "no validation metric shared with the champion to compare"]
    return not worse, lines


def training_for(*, session: Session, model: str, plant_id: str) -> list[RetrainingRequest]:
    """Return the requests of ``model`` still training a candidate that covers ``plant_id``.

    A request covers the plants of its campaign: its own plant for a local fine-tune, every
    plant showing the change for a federated one.
    """
    rows = session.scalars(
        select(RetrainingRequest)
        .where(
            RetrainingRequest.model == model,
            RetrainingRequest.candidate_outcome == CandidateOutcome.TRAINING.value,
            RetrainingRequest.campaign_id.is_not(None),
        )
        .order_by(RetrainingRequest.id)
    )
    return [r for r in rows if plant_id == r.plant_id or plant_id in (r.plants or [])]
