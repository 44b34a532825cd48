"""Appending to the audit chain, reading it in pages, streaming, exporting and verifying it.

:func:`append` is the one way any domain writes the trail: it adds the chained entry in
the caller's transaction (never commits), so the audited change and its entry commit
together or not at all.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from federation.errors import InvalidInput
from federation.schemas.audit import AuditEntryRead
from hub.audit import chain
from hub.audit.models import AuditEntry
from hub.db import utcnow
from hub.pagination import decode_token, scalar_page

#: The actions the hub records (dotted, lowercase). Other domains add theirs here.
ACTIONS = frozenset(
    {
        "recipe.publish",
        "policy.publish",
        "version.create",
        "artifact.upload",
        "alias.set",
        "alias.delete",
        "promotion.request",
        "promotion.decide",
        "signature.create",
        "signature.failed",
        "rollback",
        "break_glass",
        "token.create",
        "token.revoke",
        "user.create",
        "plant.enroll",
        "campaign.start",
        "campaign.cancel",
        "retraining.decide",
        "retraining.candidate",
    }
)
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
# Key of the PostgreSQL advisory lock that serialises appends ("mwaudit" in ASCII).
_PG_LOCK_KEY = 0x6D77617564697400
_HEAD = select(AuditEntry.seq, AuditEntry.entry_hash).order_by(AuditEntry.seq.desc()).limit(1)


def _serialise(session: Session) -> None:
    """Hold the chain's write lock until the caller's transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    else:
        # SQLite has one writer at a time; a no-op write takes the write lock now (waiting
        # up to busy_timeout), so the head read next cannot be stale.
        session.execute(text("UPDATE audit_entries SET seq = seq WHERE 0 = 1"))


def append(
    *,
    session: Session,
    actor: str,
    action: str,
    subject: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str | None = None,
    flags: Sequence[str] = (),
) -> AuditEntry:
    """Add the next entry of the chain inside the caller's transaction (no commit).

    Appends are serialised (an advisory transaction lock on PostgreSQL, the write lock on
    SQLite), so concurrent writers produce one unbroken chain. Call it last before the
    commit: the lock is held until the transaction ends.

    Returns
    -------
    AuditEntry
        The entry as inserted (a snapshot, not attached to the session).

    Raises
    ------
    ValueError
        When ``action`` is not a dotted lowercase name or a document is not JSON
        (NaN and Infinity included): a programming error, not bad user input.
    """
    values = entry(
        actor=actor,
        action=action,
        subject=subject,
        before=before,
        after=after,
        reason=reason,
        flags=flags,
    )
    return append_batch(session=session, entries=[values])[0]


def entry(
    *,
    actor: str,
    action: str,
    subject: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str | None = None,
    flags: Sequence[str] = (),
) -> dict[str, Any]:
    """Prepare one entry for :func:`append_batch` (same arguments as :func:`append`)."""
    if not _ACTION.match(action):
        raise ValueError(f"audit action {action!r} is not a dotted lowercase name")
    return {
        "at": chain.format_time(utcnow()),
        "actor": actor[:200],
        "action": action,
        "subject": subject[:300],
        "before_json": chain.document_text(before),
        "after_json": chain.document_text(after),
        "reason": reason[:2000] if reason is not None else None,
        "flags_json": chain.flags_text(flags),
    }


def append_batch(*, session: Session, entries: Sequence[dict[str, Any]]) -> list[AuditEntry]:
    """Append several prepared entries (:func:`entry`) under one lock and one insert."""
    if not entries:
        return []
    _serialise(session)
    row = session.execute(_HEAD).first()
    seq, prev = (row[0], row[1]) if row is not None else (0, chain.GENESIS)
    chained = []
    for values in entries:
        seq += 1
        digest = chain.entry_hash(prev, chain.body(seq, **values))
        chained.append({**values, "seq": seq, "prev_hash": prev, "entry_hash": digest})
        prev = digest
    session.execute(insert(AuditEntry), chained)
    return [AuditEntry(**values) for values in chained]


def head(*, session: Session) -> tuple[int, str]:
    """Return the last entry's ``(seq, entry_hash)``, or ``(0, GENESIS)`` when empty."""
    row = session.execute(_HEAD).first()
    return (row[0], row[1]) if row is not None else (0, chain.GENESIS)


@dataclasses.dataclass(frozen=True)
class AuditFilters:
    """What an audit listing is filtered on; ``since``/``until`` are ISO 8601 UTC times."""

    action: str | None = None
    subject: str | None = None
    actor: str | None = None
    since: str | None = None
    until: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the filters a page token is bound to."""
        return dataclasses.asdict(self)


def _time_bound(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    import datetime as dt

    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(
            f"{name} must be an ISO 8601 time such as 2026-12-07T01:00:00Z.",
            errors=[{"path": name, "message": "not an ISO 8601 time"}],
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return chain.format_time(parsed)


def _filtered(filters: AuditFilters) -> Any:
    stmt = select(AuditEntry)
    if filters.action:
        stmt = stmt.where(AuditEntry.action == filters.action)
    if filters.subject:
        stmt = stmt.where(AuditEntry.subject == filters.subject)
    if filters.actor:
        stmt = stmt.where(AuditEntry.actor == filters.actor)
    if (since := _time_bound(filters.since, "since")) is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if (until := _time_bound(filters.until, "until")) is not None:
        stmt = stmt.where(AuditEntry.at < until)
    return stmt


def to_read(entry: AuditEntry) -> AuditEntryRead:
    """Return the wire entity of an entry (documents parsed back from their canonical text)."""
    return AuditEntryRead(
        seq=entry.seq,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        subject=entry.subject,
        before=json.loads(entry.before_json) if entry.before_json is not None else None,
        after=json.loads(entry.after_json) if entry.after_json is not None else None,
        reason=entry.reason,
        flags=json.loads(entry.flags_json),
        prev_hash=entry.prev_hash,
        entry_hash=entry.entry_hash,
    )


def list_entries(
    *, session: Session, filters: AuditFilters, page_size: int, page_token: str | None
) -> tuple[list[AuditEntryRead], str | None]:
    """One page of entries in chain order, filtered by action, subject, actor and time.

    Raises
    ------
    InvalidInput
        When a time bound is not ISO 8601, or the page token is malformed or was issued
        for other filters.
    """
    after = decode_token(page_token, filters.as_dict(), int)
    rows, token = scalar_page(
        session=session,
        stmt=_filtered(filters),
        key=AuditEntry.seq,
        after=after,
        page_size=page_size,
        filters=filters.as_dict(),
    )
    return [to_read(r) for r in rows], token


def stream_rows(*, session: Session, batch: int = 20_000) -> Iterator[tuple[Any, ...]]:
    """Every entry in chain order as plain driver tuples, ``batch`` rows at a time.

    Straight on the driver's cursor (a named, server-side cursor on PostgreSQL): neither
    ORM objects nor SQLAlchemy rows are built, which would cost more than the hashing.
    """
    sql = f"SELECT {', '.join(chain.COLUMNS)} FROM audit_entries ORDER BY seq"
    dbapi = session.connection().connection.driver_connection
    assert dbapi is not None
    if session.get_bind().dialect.name == "postgresql":
        cursor = dbapi.cursor(name="audit_verify")
        cursor.itersize = batch
    else:
        cursor = dbapi.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(batch):
            yield from rows
    finally:
        cursor.close()


def verify(*, session: Session, expect_head: str | None = None) -> chain.Verification:
    """Recompute the whole chain from the database (see :func:`hub.audit.chain.verify`)."""
    return chain.verify(stream_rows(session=session), expect_head=expect_head)


def export_lines(
    *, session: Session, since: str | None = None, until: str | None = None, batch: int = 5_000
) -> Iterator[str]:
    """Yield the entries from ``since`` to ``until`` as JSON lines, in chain order.

    Raises
    ------
    InvalidInput
        When a time bound is not ISO 8601.
    """
    stmt = _filtered(AuditFilters(since=since, until=until)).order_by(AuditEntry.seq)
    result = session.execute(stmt, execution_options={"yield_per": batch})
    for entry in result.scalars():
        yield to_read(entry).model_dump_json()
