"""Outbox service: enqueue inside the caller's transaction; read and settle heads for the sender."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, select, update
from sqlalchemy.orm import Session

from federation.errors import Conflict, InvalidInput
from plant_node.db import utcnow
from plant_node.outbox.models import OutboxItem, OutboxStatus, OutboxStream
from plant_node.outbox.types import OutboxMessage

MAX_ERROR_CHARS = 2000
#: What a row costs beyond its payload and key (other columns, the three indexes), in bytes.
ROW_OVERHEAD_BYTES = 160
# The hub's event id (``federation.schemas.common.Identifier``): the key travels as that id.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def to_message(item: OutboxItem) -> OutboxMessage:
    """Convert a row into the plain message handed to deliverers."""
    return OutboxMessage(
        stream=item.stream,
        seq=item.seq,
        kind=item.kind,
        idempotency_key=item.idempotency_key,
        payload=dict(item.payload),
        created_at=item.created_at,
    )


def _next_seq(*, session: Session, stream: str) -> int:
    # The UPDATE takes the write lock first (SQLite) or the row lock (PostgreSQL), so two
    # transactions enqueueing on one stream get consecutive numbers in commit order.
    bumped = session.execute(
        update(OutboxStream)
        .where(OutboxStream.stream == stream)
        .values(last_seq=OutboxStream.last_seq + 1)
        .returning(OutboxStream.last_seq)
    ).scalar_one_or_none()
    if bumped is not None:
        return int(bumped)
    session.add(OutboxStream(stream=stream, last_seq=1))
    session.flush()
    return 1


def get_item(*, session: Session, idempotency_key: str) -> OutboxItem | None:
    """Return the row with this idempotency key, or None."""
    return session.execute(
        select(OutboxItem).where(OutboxItem.idempotency_key == idempotency_key)
    ).scalar_one_or_none()


def enqueue(
    *,
    session: Session,
    stream: str,
    payload: dict[str, Any],
    key: str | None = None,
    kind: str | None = None,
) -> OutboxMessage:
    """Add a message to the outbox as part of the caller's transaction (flush, no commit).

    The message is sent only if the caller commits, so a row and the event that announces
    it are written together or not at all.

    Parameters
    ----------
    session
        The caller's session; this function only flushes.
    stream
        Ordering domain; messages of one stream are delivered in enqueue order.
    payload
        JSON-serializable body.
    key
        Idempotency key; defaults to a fresh UUID. Enqueueing the same key twice with the
        same stream and payload returns the first message.
    kind
        Event type for the hub; defaults to ``stream``.

    Returns
    -------
    OutboxMessage
        The enqueued message with its sequence number.

    Raises
    ------
    Conflict
        ``key`` is already used by a different message.
    InvalidInput
        ``key`` is not a valid hub event id (64 URL-safe characters at most).
    """
    key = key or uuid.uuid4().hex
    if not KEY_PATTERN.match(key):
        raise InvalidInput(f"Outbox key {key!r} is not a valid event id (URL-safe, <= 64 chars).")
    existing = get_item(session=session, idempotency_key=key)
    if existing is not None:
        if existing.stream != stream or existing.payload != payload:
            raise Conflict(
                f"Outbox key {key!r} is already used by a different message.",
                diagnostic=f"existing stream={existing.stream} seq={existing.seq}",
            )
        return to_message(existing)
    item = OutboxItem(
        stream=stream,
        seq=_next_seq(session=session, stream=stream),
        kind=kind or stream,
        idempotency_key=key,
        payload=payload,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(item)
    session.flush()
    return to_message(item)


def get_head(*, session: Session, stream: str) -> OutboxItem | None:
    """Return the oldest pending row of ``stream`` (the only one that may be sent next)."""
    return session.execute(
        select(OutboxItem)
        .where(OutboxItem.stream == stream, OutboxItem.status == OutboxStatus.PENDING)
        .order_by(OutboxItem.seq)
        .limit(1)
    ).scalar_one_or_none()


def list_due_heads(*, session: Session, now: datetime) -> list[OutboxMessage]:
    """Return, per stream, the oldest pending message if its next attempt is due.

    Parameters
    ----------
    session
        Open session.
    now
        Current time (UTC).

    Returns
    -------
    list[OutboxMessage]
        At most one message per stream, ordered by stream name.
    """
    heads = (
        select(OutboxItem.stream, func.min(OutboxItem.seq).label("seq"))
        .where(OutboxItem.status == OutboxStatus.PENDING)
        .group_by(OutboxItem.stream)
        .subquery()
    )
    rows = session.execute(
        select(OutboxItem)
        .join(heads, (OutboxItem.stream == heads.c.stream) & (OutboxItem.seq == heads.c.seq))
        .where(OutboxItem.next_attempt_at <= now)
        .order_by(OutboxItem.stream)
    ).scalars()
    return [to_message(r) for r in rows]


def _get_or_raise(session: Session, key: str) -> OutboxItem:
    item = get_item(session=session, idempotency_key=key)
    if item is None:
        raise LookupError(f"outbox item {key!r} vanished")
    return item


def mark_delivered(*, session: Session, idempotency_key: str, now: datetime) -> None:
    """Record that the receiver accepted the message (flush only)."""
    item = _get_or_raise(session, idempotency_key)
    item.status = OutboxStatus.DELIVERED
    item.delivered_at = now
    item.attempts += 1
    item.last_error = None
    session.flush()


def mark_failed(
    *, session: Session, idempotency_key: str, error: str, next_attempt_at: datetime
) -> int:
    """Record a failed attempt and when to try again; return the attempt count (flush only)."""
    item = _get_or_raise(session, idempotency_key)
    item.attempts += 1
    item.last_error = error[:MAX_ERROR_CHARS]
    item.next_attempt_at = next_attempt_at
    session.flush()
    return item.attempts


def mark_rejected(*, session: Session, idempotency_key: str, error: str) -> None:
    """Record that the receiver refused the message for good; the stream moves on (flush only)."""
    item = _get_or_raise(session, idempotency_key)
    item.attempts += 1
    item.status = OutboxStatus.REJECTED
    item.last_error = error[:MAX_ERROR_CHARS]
    session.flush()


def mark_conflict(*, session: Session, idempotency_key: str, error: str) -> None:
    """Park a message the hub holds with other content; the stream moves on (flush only).

    It is never counted as delivered and never resent on its own; an operator inspects it
    (``last_error``) and re-enqueues or drops it.
    """
    item = _get_or_raise(session, idempotency_key)
    item.attempts += 1
    item.status = OutboxStatus.CONFLICT
    item.last_error = error[:MAX_ERROR_CHARS]
    session.flush()


@dataclass(frozen=True)
class OutboxStats:
    """Counts for ``/v1/ready`` and metrics."""

    pending: int
    delivered: int
    rejected: int
    oldest_pending_at: datetime | None
    conflict: int = 0


def get_stats(*, session: Session) -> OutboxStats:
    """Return counts by status and the age of the oldest pending message."""
    counts = dict(
        session.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status)).all()
    )
    oldest = session.execute(
        select(func.min(OutboxItem.created_at)).where(OutboxItem.status == OutboxStatus.PENDING)
    ).scalar_one_or_none()
    if oldest is not None and oldest.tzinfo is None:
        from datetime import UTC

        oldest = oldest.replace(tzinfo=UTC)
    return OutboxStats(
        pending=int(counts.get(OutboxStatus.PENDING, 0)),
        delivered=int(counts.get(OutboxStatus.DELIVERED, 0)),
        rejected=int(counts.get(OutboxStatus.REJECTED, 0)),
        oldest_pending_at=oldest,
        conflict=int(counts.get(OutboxStatus.CONFLICT, 0)),
    )


def list_items(
    *, session: Session, stream: str | None = None, status: OutboxStatus | None = None
) -> list[OutboxItem]:
    """Return rows ordered by stream and seq, optionally filtered."""
    query = select(OutboxItem).order_by(OutboxItem.stream, OutboxItem.seq)
    if stream is not None:
        query = query.where(OutboxItem.stream == stream)
    if status is not None:
        query = query.where(OutboxItem.status == status)
    return list(session.execute(query).scalars())


def row_bytes() -> Any:
    """Return the SQL expression of what one row costs (payload text, key and overhead)."""
    return (
        func.length(cast(OutboxItem.payload, Text))
        + func.length(OutboxItem.idempotency_key)
        + ROW_OVERHEAD_BYTES
    )


def get_size_bytes(*, session: Session) -> dict[str, int]:
    """Return the bytes the outbox rows take, by status (the budget's measure).

    Parameters
    ----------
    session
        Open session.

    Returns
    -------
    dict[str, int]
        Status -> bytes (statuses without rows are absent), plus ``"total"``.
    """
    rows = session.execute(
        select(OutboxItem.status, func.sum(row_bytes())).group_by(OutboxItem.status)
    ).all()
    sizes = {str(status): int(total or 0) for status, total in rows}
    sizes["total"] = sum(sizes.values())
    return sizes
