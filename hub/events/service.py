"""Ingestion of plant events: idempotent by (plant, event id), all-or-nothing per batch."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federation.errors import Conflict, InvalidInput
from federation.schemas.events import EventIngestResult, PlantEventCreate, PlantEventRead
from federation.schemas.rollouts import WebhookEvent
from hub.db import begin_write, commit_or_conflict
from hub.events.models import PlantEvent
from hub.pagination import decode_token, scalar_page
from hub.registry import service as registry_service
from hub.webhooks import service as webhooks_service


def to_read(row: PlantEvent) -> PlantEventRead:
    """Convert a stored event to its wire entity."""
    return PlantEventRead(
        id=row.event_id,
        plant_id=row.plant_id,
        kind=row.kind,
        occurred_at=row.occurred_at,
        payload=dict(row.payload),
        received_at=row.received_at,
    )


def ingest_events(
    *, session: Session, plant_id: str, events_in: list[PlantEventCreate], max_batch: int
) -> EventIngestResult:
    """Store new events of a plant; ids already received with the same content are skipped.

    Raises
    ------
    NotFound
        When the plant is not enrolled.
    InvalidInput
        When the batch is too large or repeats an id.
    Conflict
        When an id was already received from this plant with different content (ids are
        unique per plant: another plant's id is never a duplicate nor a conflict).
    """
    # Read-then-write beside the hub's worker threads: on SQLite take the write lock first
    # (a stale snapshot fails at once with "database is locked"; the lock waits instead).
    begin_write(session)
    registry_service.get_plant_or_raise(session=session, plant_id=plant_id)
    if len(events_in) > max_batch:
        raise InvalidInput(f"A batch holds at most {max_batch} events; split it.")
    ids = [e.id for e in events_in]
    if len(set(ids)) != len(ids):
        raise InvalidInput("The batch repeats an event id.")
    existing = {
        r.event_id: r
        for r in session.scalars(
            select(PlantEvent).where(PlantEvent.plant_id == plant_id, PlantEvent.event_id.in_(ids))
        )
    }
    duplicates: list[str] = []
    for event in events_in:
        if event.occurred_at.tzinfo is None:  # naive means UTC on the wire
            event = event.model_copy(
                update={"occurred_at": event.occurred_at.replace(tzinfo=dt.UTC)}
            )
        old = existing.get(event.id)
        if old is None:
            session.add(
                PlantEvent(
                    event_id=event.id,
                    plant_id=plant_id,
                    kind=event.kind,
                    occurred_at=event.occurred_at,
                    payload=event.model_dump(mode="json")["payload"],
                )
            )
            if event.kind.startswith("alert."):
                webhooks_service.enqueue(
                    session=session,
                    event=WebhookEvent.ALERT_RECEIVED,
                    data={"plant_id": plant_id, "event_id": event.id, "kind": event.kind,
                          "payload": event.model_dump(mode="json")["payload"]},
                )
            continue
        same = (
            old.kind == event.kind
            and old.occurred_at == event.occurred_at
            and old.payload == event.model_dump(mode="json")["payload"]
        )
        if not same:
            raise Conflict(
                f"event '{event.id}' was already received with different content; "
                "event ids must be unique per event."
            )
        duplicates.append(event.id)
    commit_or_conflict(session, detail="an event in this batch was received concurrently; retry")
    return EventIngestResult(accepted=len(events_in) - len(duplicates), duplicates=duplicates)


def list_events(
    *, session: Session, plant_id: str, kind: str | None, page_size: int, page_token: str | None
) -> tuple[list[PlantEvent], str | None]:
    """One page of a plant's events in the order they were received."""
    registry_service.get_plant_or_raise(session=session, plant_id=plant_id)
    filters = {"plant_id": plant_id, "kind": kind}
    after = decode_token(page_token, filters, int)
    stmt = select(PlantEvent).where(PlantEvent.plant_id == plant_id)
    if kind:
        stmt = stmt.where(PlantEvent.kind == kind)
    return scalar_page(
        session=session,
        stmt=stmt,
        key=PlantEvent.seq,
        after=after,
        page_size=page_size,
        filters=filters,
    )


def count_by_day(
    *, session: Session, plant_id: str, kind_prefix: str, start: dt.date, end: dt.date
) -> dict[dt.date, int]:
    """Count a plant's events whose kind starts with ``kind_prefix``, per UTC day.

    Counted by the database (one grouped query) over ``[start, end]`` (UTC days).
    """
    if session.get_bind().dialect.name == "postgresql":
        day: Any = func.to_char(func.timezone("UTC", PlantEvent.occurred_at), "YYYY-MM-DD")
    else:
        day = func.substr(PlantEvent.occurred_at, 1, 10)
    stmt = (
        select(day, func.count())
        .where(
            PlantEvent.plant_id == plant_id,
            PlantEvent.kind.startswith(kind_prefix),
            PlantEvent.occurred_at >= dt.datetime.combine(start, dt.time(), dt.UTC),
            PlantEvent.occurred_at
            < dt.datetime.combine(end, dt.time(), dt.UTC) + dt.timedelta(days=1),
        )
        .group_by(day)
    )
    return {dt.date.fromisoformat(str(d)): int(n) for d, n in session.execute(stmt)}


def recent_events(
    *, session: Session, plant_id: str, kind_prefix: str, limit: int
) -> list[PlantEventRead]:
    """Return a plant's newest events (by occurrence) whose kind starts with ``kind_prefix``."""
    stmt = (
        select(PlantEvent)
        .where(PlantEvent.plant_id == plant_id, PlantEvent.kind.startswith(kind_prefix))
        .order_by(PlantEvent.occurred_at.desc(), PlantEvent.seq.desc())
        .limit(limit)
    )
    return [to_read(row) for row in session.scalars(stmt)]


def last_received_by_plant(
    *, session: Session, plant_ids: list[str] | None
) -> dict[str, dt.datetime]:
    """When each plant's newest event arrived (plants with none are absent)."""
    stmt = select(PlantEvent.plant_id, func.max(PlantEvent.received_at)).group_by(
        PlantEvent.plant_id
    )
    if plant_ids is not None:
        stmt = stmt.where(PlantEvent.plant_id.in_(plant_ids))
    return {str(p): t for p, t in session.execute(stmt) if t is not None}


def newest_fields_of_kind(
    *,
    session: Session,
    plant_ids: list[str] | None,
    kind_prefix: str,
    fields: tuple[str, ...],
    limit: int,
) -> list[tuple[str, str, dt.datetime, dict[str, str | None]]]:
    """Return the newest events whose kind starts with ``kind_prefix``, newest first.

    Only ``(plant, kind, received_at, payload fields)``: the named payload fields come out
    of the JSON in the database, as text (``None`` when absent), so a fleet-wide read does
    not parse and validate every payload. The prefix is a range on ``kind`` (``>= prefix``
    and ``<`` the prefix with its last character bumped), which the ``(kind, seq)`` index
    answers on SQLite and PostgreSQL alike; ``LIKE 'prefix%'`` scanned every event.
    """
    if not kind_prefix:
        raise ValueError("kind_prefix must not be empty")
    upper = kind_prefix[:-1] + chr(ord(kind_prefix[-1]) + 1)
    stmt = select(
        PlantEvent.plant_id,
        PlantEvent.kind,
        PlantEvent.received_at,
        *(PlantEvent.payload[name].as_string() for name in fields),
    ).where(PlantEvent.kind >= kind_prefix, PlantEvent.kind < upper)
    if plant_ids is not None:
        stmt = stmt.where(PlantEvent.plant_id.in_(plant_ids))
    stmt = stmt.order_by(PlantEvent.seq.desc()).limit(limit)
    return [
        (str(row[0]), str(row[1]), row[2], dict(zip(fields, row[3:], strict=True)))
        for row in session.execute(stmt)
    ]
