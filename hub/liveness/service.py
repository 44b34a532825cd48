"""Find plants silent longer than their timeout; announce each stale episode once.

A plant is heard from when the hub receives one of its events or metrics reports (the
inventory's ``last_report_at``; the node's outbox sends ``rollout.stats`` and serving
confirmations as events, so a running node speaks at least once per stats interval while
it serves a version under rollout). A plant the hub never heard from has no episode.

:func:`check_nodes` runs as the hub scheduler's job ``liveness.check_nodes``. Each plant has
at most one :class:`~hub.liveness.models.PlantLiveness` row: a plant silent longer than
``stale_after_s`` that is not already in an episode starts one (webhook ``node.stale``);
a plant in an episode heard from after its ``last_seen_at`` ends it (webhook
``node.recovered``). Running the job again, or twice at once, announces nothing new: the
row is written under a lock (SQLite's write lock, PostgreSQL row locks) and the webhook is
queued in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from federation.schemas.rollouts import WebhookEvent
from hub.db import begin_write, utcnow
from hub.events import service as events_service
from hub.liveness.models import PlantLiveness
from hub.metrics import service as metrics_service
from hub.webhooks import service as webhooks_service

STALE, LIVE = "stale", "live"


@dataclass
class LivenessChanges:
    """What one check changed: plants that went stale and plants that recovered."""

    stale: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)


def last_heard(*, session: Session) -> dict[str, dt.datetime]:
    """When each plant was last heard from (an event or a metrics report received)."""
    seen = events_service.last_received_by_plant(session=session, plant_ids=None)
    for plant, at in metrics_service.last_report_by_plant(session=session, plant_ids=None).items():
        if plant not in seen or at > seen[plant]:
            seen[plant] = at
    return seen


def check_nodes(
    *, session: Session, stale_after_s: float, now: dt.datetime | None = None
) -> LivenessChanges:
    """Start and end stale episodes; queue ``node.stale`` / ``node.recovered`` (commits).

    Parameters
    ----------
    session
        A session of the job's own.
    stale_after_s
        The node timeout (``node_stale_seconds``, the inventory's too).
    now
        The time to judge silence at (tests pass one).

    Returns
    -------
    LivenessChanges
        The plants whose episode started or ended in this check, sorted.
    """
    now = now or utcnow()
    begin_write(session)  # read-then-write: hold the write lock so one check wins
    heard = last_heard(session=session)
    # PostgreSQL: lock the rows (SQLite holds the database lock already); a plant's first
    # row inserted by two checks at once fails the second on the primary key.
    rows = {r.plant_id: r for r in session.scalars(select(PlantLiveness).with_for_update())}
    changes = LivenessChanges()
    stale_items: list[dict[str, object]] = []
    recovered_items: list[dict[str, object]] = []
    for plant, last in sorted(heard.items()):
        row = rows.get(plant)
        silent_s = (now - last).total_seconds()
        if silent_s > stale_after_s:
            if row is not None and row.status == STALE:
                continue
            if row is None:
                row = PlantLiveness(plant_id=plant)
                session.add(row)
            row.status, row.stale_since, row.last_seen_at = STALE, now, last
            row.recovered_at, row.updated_at = None, now
            changes.stale.append(plant)
            stale_items.append({
                "plant_id": plant, "last_seen_at": last.isoformat(),
                "silent_seconds": round(silent_s, 3), "timeout_seconds": stale_after_s,
                "stale_since": now.isoformat(),
            })  # fmt: skip
        elif row is not None and row.status == STALE and last > row.last_seen_at:
            row.status, row.recovered_at, row.updated_at = LIVE, now, now
            changes.recovered.append(plant)
            recovered_items.append({
                "plant_id": plant, "stale_since": row.stale_since.isoformat(),
                "heard_at": last.isoformat(), "recovered_at": now.isoformat(),
            })  # fmt: skip
    session.flush()
    webhooks_service.enqueue_many(session=session, event=WebhookEvent.NODE_STALE, items=stale_items)
    webhooks_service.enqueue_many(
        session=session, event=WebhookEvent.NODE_RECOVERED, items=recovered_items
    )
    try:
        session.commit()
    except IntegrityError:  # another check started the same episode first: it announced it
        session.rollback()
        return LivenessChanges()
    return changes


def stale_plants(*, session: Session) -> list[str]:
    """Plants in a stale episode, sorted."""
    return list(
        session.scalars(
            select(PlantLiveness.plant_id)
            .where(PlantLiveness.status == STALE)
            .order_by(PlantLiveness.plant_id)
        )
    )
