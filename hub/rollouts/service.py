"""Rollout rows: create, read, step log, overlap checks; rollback rows.

The engine and the use cases that span domains are in :mod:`hub.rollouts.flows`; this
module owns the rows and only flushes, except where a function says it commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.errors import Conflict, NotFound
from federation.schemas.rollouts import (
    PlantStage,
    RollbackRead,
    RolloutPlantRead,
    RolloutRead,
    RolloutStatus,
    RolloutStepRead,
)
from hub.db import utcnow
from hub.events import service as events_service
from hub.pagination import decode_token, scalar_page
from hub.registry import service as registry_service
from hub.rollouts.models import Rollback, Rollout, RolloutPlant, RolloutStep

ACTIVE = tuple(s.value for s in RolloutStatus if s.active)


def get_rollout_or_raise(*, session: Session, rollout_id: int, lock: bool = False) -> Rollout:
    """Return a rollout (``lock``: row lock until the transaction ends, PostgreSQL).

    Raises
    ------
    NotFound
        When it does not exist.
    """
    row = session.get(Rollout, rollout_id, with_for_update=lock or None)
    if row is None:
        raise NotFound(f"rollout {rollout_id} does not exist; list rollouts.")
    return row


def active_rollout_ids(*, session: Session) -> list[int]:
    """Ids of the rollouts the engine advances (running ones), oldest first."""
    return list(
        session.scalars(
            select(Rollout.id)
            .where(Rollout.status == RolloutStatus.RUNNING.value)
            .order_by(Rollout.id)
        )
    )


def overlapping(*, session: Session, model: str, plants: Sequence[str]) -> list[tuple[int, str]]:
    """``(rollout id, plant)`` of active rollouts of ``model`` that hold one of ``plants``."""
    if not plants:
        return []
    rows = session.execute(
        select(Rollout.id, RolloutPlant.plant_id)
        .join(RolloutPlant, RolloutPlant.rollout_id == Rollout.id)
        .where(
            Rollout.model == model,
            Rollout.status.in_(ACTIVE),
            RolloutPlant.plant_id.in_(list(plants)),
        )
        .order_by(Rollout.id, RolloutPlant.plant_id)
    ).all()
    return [(int(r), str(p)) for r, p in rows]


def plants_of(*, session: Session, rollout_id: int) -> list[RolloutPlant]:
    """Return the plants of a rollout by wave then plant id."""
    return list(
        session.scalars(
            select(RolloutPlant)
            .where(RolloutPlant.rollout_id == rollout_id)
            .order_by(RolloutPlant.wave, RolloutPlant.plant_id)
        )
    )


def active_stage(*, session: Session, model: str, plant_id: str) -> tuple[int, str] | None:
    """``(rollout id, stage)`` of the active rollout of ``model`` at a plant, if any."""
    row = session.execute(
        select(Rollout.id, RolloutPlant.stage)
        .join(RolloutPlant, RolloutPlant.rollout_id == Rollout.id)
        .where(
            Rollout.model == model,
            Rollout.status.in_(ACTIVE),
            RolloutPlant.plant_id == plant_id,
        )
        .order_by(Rollout.id.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


def record_step(
    *,
    session: Session,
    rollout: Rollout,
    action: str,
    plant_id: str | None = None,
    from_stage: str | None = None,
    to_stage: str | None = None,
    reason: str = "",
    decision: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> RolloutStep:
    """Append one step to the rollout's log (flush only); its ``seq`` is the next number."""
    seq = rollout.next_seq
    rollout.next_seq = seq + 1
    rollout.updated_at = now or utcnow()
    row = RolloutStep(
        rollout_id=rollout.id,
        seq=seq,
        at=now or utcnow(),
        plant_id=plant_id,
        action=action,
        from_stage=from_stage,
        to_stage=to_stage,
        reason=reason[:4000],
        decision=decision,
    )
    session.add(row)
    session.flush()
    return row


def steps_of(*, session: Session, rollout_id: int) -> list[RolloutStep]:
    """Return the step log of a rollout in order."""
    return list(
        session.scalars(
            select(RolloutStep)
            .where(RolloutStep.rollout_id == rollout_id)
            .order_by(RolloutStep.seq)
        )
    )


def list_rollouts(
    *,
    session: Session,
    status: RolloutStatus | None,
    model: str | None,
    page_size: int,
    page_token: str | None,
) -> tuple[list[Rollout], str | None]:
    """One page of rollouts in creation order."""
    filters = {"status": None if status is None else status.value, "model": model}
    after = decode_token(page_token, filters, int)
    stmt = select(Rollout)
    if status is not None:
        stmt = stmt.where(Rollout.status == status.value)
    if model:
        stmt = stmt.where(Rollout.model == model)
    return scalar_page(
        session=session,
        stmt=stmt,
        key=Rollout.id,
        after=after,
        page_size=page_size,
        filters=filters,
    )


def rollout_read(*, session: Session, rollout: Rollout, steps: bool = False) -> RolloutRead:
    """Convert a rollout with its plants (and steps)."""
    version = registry_service.get_version_or_raise(session=session, version_id=rollout.version_id)
    plants = plants_of(session=session, rollout_id=rollout.id)
    return RolloutRead(
        id=rollout.id,
        model=rollout.model,
        version_id=rollout.version_id,
        version=version.version,
        plan=rollout.plan_ref,
        gate=rollout.gate_ref,
        status=RolloutStatus(rollout.status),
        current_wave=rollout.current_wave,
        waves=list(rollout.waves),
        failure_handling=rollout.failure_handling,
        detail=rollout.detail,
        created_by=rollout.created_by,
        created_at=rollout.created_at,
        updated_at=rollout.updated_at,
        finished_at=rollout.finished_at,
        plants=[
            RolloutPlantRead(
                plant_id=p.plant_id,
                wave=p.wave,
                wave_name=rollout.waves[p.wave],
                stage=PlantStage(p.stage),
                stage_started_at=p.stage_started_at,
                previous_version_id=p.previous_version_id,
                promotion_id=p.promotion_id,
                detail=p.detail,
            )
            for p in plants
        ],
        steps=[
            RolloutStepRead(
                seq=s.seq,
                at=s.at,
                plant_id=s.plant_id,
                action=s.action,
                from_stage=s.from_stage,
                to_stage=s.to_stage,
                reason=s.reason,
            )
            for s in (steps_of(session=session, rollout_id=rollout.id) if steps else [])
        ],
    )


def finish(
    *,
    session: Session,
    rollout: Rollout,
    status: RolloutStatus,
    detail: str,
    now: dt.datetime | None = None,
) -> None:
    """Mark a rollout final or halted (flush only)."""
    rollout.status = status.value
    rollout.detail = detail[:4000]
    if not status.active:
        rollout.finished_at = now or utcnow()
    session.flush()


def check_no_overlap(*, session: Session, model: str, plants: Sequence[str]) -> None:
    """Raise :class:`Conflict` when an active rollout of ``model`` holds one of ``plants``."""
    clash = overlapping(session=session, model=model, plants=plants)
    if clash:
        named = ", ".join(f"{p} (rollout {r})" for r, p in clash[:10])
        raise Conflict(
            f"an active rollout of '{model}' already holds {named}; abort it or wait for it."
        )


# ---------------------------------------------------------------- rollbacks


def add_rollback(
    *,
    session: Session,
    model: str,
    plant_id: str,
    from_version_id: int | None,
    to_version_id: int,
    rollout_id: int | None,
    promotion_id: int | None,
    reason: str,
    actor: str,
) -> Rollback:
    """Record one plant's rollback (flush only)."""
    row = Rollback(
        model=model,
        plant_id=plant_id,
        from_version_id=from_version_id,
        to_version_id=to_version_id,
        rollout_id=rollout_id,
        promotion_id=promotion_id,
        reason=reason[:2000],
        created_by=actor,
    )
    session.add(row)
    session.flush()
    return row


#: The node event that says which version a plant serves now (see ``plant_node.serving.follow``).
SERVING_EVENT = "rollout.serving"


def serving_confirmed_at(
    *, session: Session, plant_id: str, model: str, version: str, since: dt.datetime
) -> dt.datetime | None:
    """When the plant's node last reported serving ``version`` of ``model`` after ``since``."""
    for event in events_service.recent_events(
        session=session, plant_id=plant_id, kind_prefix=SERVING_EVENT, limit=20
    ):
        payload = event.payload or {}
        if event.kind != SERVING_EVENT or payload.get("model") != model:
            continue
        if str(payload.get("model_version")) != version:
            return None  # the newest report of this model names another version
        return event.received_at if event.received_at >= since else None
    return None


def rollback_read(*, session: Session, row: Rollback) -> RollbackRead:
    """Convert a rollback row (``confirmed_at`` from the plant's serving reports)."""
    version = registry_service.get_version_or_raise(session=session, version_id=row.to_version_id)
    return RollbackRead(
        id=row.id,
        model=row.model,
        plant_id=row.plant_id,
        from_version_id=row.from_version_id,
        to_version_id=row.to_version_id,
        to_version=version.version,
        rollout_id=row.rollout_id,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        confirmed_at=serving_confirmed_at(
            session=session,
            plant_id=row.plant_id,
            model=row.model,
            version=version.version,
            since=row.created_at,
        ),
    )


def active_stages(
    *, session: Session, plant_ids: list[str] | None
) -> dict[tuple[str, str], tuple[int, str]]:
    """``(model, plant) -> (rollout id, stage)`` of every active rollout (the newest wins)."""
    stmt = (
        select(Rollout.model, RolloutPlant.plant_id, Rollout.id, RolloutPlant.stage)
        .join(RolloutPlant, RolloutPlant.rollout_id == Rollout.id)
        .where(Rollout.status.in_(ACTIVE))
        .order_by(Rollout.id)
    )
    if plant_ids is not None:
        stmt = stmt.where(RolloutPlant.plant_id.in_(plant_ids))
    return {(str(m), str(p)): (int(r), str(s)) for m, p, r, s in session.execute(stmt)}
