"""Appending to the audit chain, reading it in pages, streaming, exporting and verifying it.

:func:`append` is the one way any domain writes the trail: it adds the entry in the
caller's transaction (never commits), so the audited change and its entry commit together
or not at all. On PostgreSQL the entry is chained after the commit, by :func:`seal`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.orm import Session

from federation.errors import InvalidInput
from federation.schemas.audit import AuditEntryRead
from hub.audit import chain
from hub.audit.models import AuditEntry, AuditPending
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
PG_LOCK_KEY = 0x6D77617564697400
_HEAD = select(AuditEntry.seq, AuditEntry.entry_hash).order_by(AuditEntry.seq.desc()).limit(1)


def _serialise(session: Session) -> None:
    """Hold the chain's write lock until the caller's transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
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
) -> None:
    """Add an entry to the trail inside the caller's transaction (no commit).

    On SQLite (one writer at a time, and a writing request already holds the write lock)
    the entry is chained at once. On PostgreSQL it is written to ``audit_pending`` without
    any lock and the sealer chains it after the commit (:func:`seal`): the audited change
    and its entry still commit together, but concurrent writers no longer queue behind each
    other's commits for the chain. Every read of the chain seals first, so a committed
    entry is on the chain by the time anyone reads it.

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
    append_batch(session=session, entries=[values])


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


#: ``session.info`` key set when a transaction wrote pending entries (the sealer's nudge).
PENDING_WRITTEN = "millwright_audit_pending"


def append_batch(*, session: Session, entries: Sequence[dict[str, Any]]) -> None:
    """Append several prepared entries (:func:`entry`) with one insert (see :func:`append`)."""
    if not entries:
        return
    if session.get_bind().dialect.name == "postgresql":
        # One row: a plain execute (a list would take the executemany path).
        session.execute(insert(AuditPending), entries[0] if len(entries) == 1 else list(entries))
        session.info[PENDING_WRITTEN] = True
        return
    _serialise(session)
    _chain_onto_head(session, entries)


def _chain_onto_head(session: Session, entries: Sequence[Mapping[str, Any]]) -> None:
    """Hash ``entries`` onto the chain's head, numbered on from it (the lock is held)."""
    row = session.execute(_HEAD).first()
    seq, prev = (row[0], row[1]) if row is not None else (0, chain.GENESIS)
    chained = []
    for values in entries:
        seq += 1
        digest = chain.entry_hash(prev, chain.body(seq, **values))
        chained.append({**values, "seq": seq, "prev_hash": prev, "entry_hash": digest})
        prev = digest
    session.execute(insert(AuditEntry), chained)


_FIELDS = (
    "at",
    "actor",
    "action",
    "subject",
    "before_json",
    "after_json",
    "reason",
    "flags_json",
)


_COLS = ", ".join(_FIELDS)
# Straight on the driver: the sealer runs after every write, so SQLAlchemy's per-statement
# work (a session, compiled statements, row objects) would cost more than the sealing.
_SQL_ANY_PENDING = "SELECT EXISTS (SELECT 1 FROM audit_pending)"
_SQL_LOCK = "SELECT pg_advisory_xact_lock(%s)"
_SQL_TAKE = (
    "DELETE FROM audit_pending WHERE id IN "
    "(SELECT id FROM audit_pending ORDER BY id LIMIT %s) "
    f"RETURNING id, {_COLS}"
)
_SQL_HEAD = "SELECT seq, entry_hash FROM audit_entries ORDER BY seq DESC LIMIT 1"
_SQL_INSERT = (
    f"INSERT INTO audit_entries (seq, {_COLS}, prev_hash, entry_hash) "
    f"VALUES ({', '.join(['%s'] * (len(_FIELDS) + 3))})"
)


def seal(*, bind: Engine | Connection, batch: int = 10_000) -> int:
    """Chain every pending entry (PostgreSQL); return how many were sealed.

    Each batch is one transaction under the chain lock: delete the pending entries visible
    now (committed ones only) from ``audit_pending``, returning them, read the head, and
    number and hash them onto it in ``id`` order. A writer that commits after a batch was
    taken, even with a lower ``id``, is sealed by the next one: the chain's order is the
    order of sealing. Sealers in any number of threads and processes serialise on the
    lock, so the chain never forks. With nothing pending this is one query and takes no
    lock. A no-op on SQLite, where appends chain at once.
    """
    engine = bind.engine
    if engine.dialect.name != "postgresql":
        return 0
    sealed = 0
    raw = engine.raw_connection()  # a pooled driver connection, in a transaction per batch
    try:
        dbapi = raw.driver_connection
        assert dbapi is not None
        autocommit = bool(dbapi.autocommit)
        if autocommit:
            dbapi.autocommit = False
        cur = raw.cursor()
        try:
            cur.execute(_SQL_ANY_PENDING)
            (anything,) = cur.fetchone() or (False,)
            if not anything:
                raw.rollback()
                return 0
            raw.rollback()
            while True:
                cur.execute(_SQL_LOCK, (PG_LOCK_KEY,))
                cur.execute(_SQL_TAKE, (batch,))
                rows = sorted(cur.fetchall())
                if rows:
                    cur.execute(_SQL_HEAD)
                    head_row = cur.fetchone()
                    seq, prev = head_row if head_row is not None else (0, chain.GENESIS)
                    chained = []
                    for row in rows:
                        seq += 1
                        digest = chain.entry_hash(prev, chain.body(seq, *row[1:]))
                        chained.append((seq, *row[1:], prev, digest))
                        prev = digest
                    if len(chained) == 1:
                        cur.execute(_SQL_INSERT, chained[0])
                    else:
                        cur.executemany(_SQL_INSERT, chained)
                raw.commit()
                sealed += len(rows)
                if len(rows) < batch:
                    return sealed
        except BaseException:
            raw.rollback()
            raise
        finally:
            cur.close()
            if autocommit:
                dbapi.autocommit = True
    finally:
        raw.close()


def unsealed(*, session: Session) -> int:
    """How many entries are written but not yet on the chain (always 0 on SQLite)."""
    return session.scalar(select(func.count()).select_from(AuditPending)) or 0


def _seal_first(session: Session) -> None:
    """Seal what is pending before a read of the chain (PostgreSQL reads see it at once)."""
    seal(bind=session.get_bind())


def head(*, session: Session) -> tuple[int, str]:
    """Return the last entry's ``(seq, entry_hash)``, or ``(0, GENESIS)`` when empty."""
    _seal_first(session)
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
    if after is None:
        _seal_first(session)
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
        # A read request's connection is in autocommit: a cursor WITH HOLD outlives the
        # implicit transaction its DECLARE runs in.
        cursor = dbapi.cursor(name="audit_verify", withhold=bool(dbapi.autocommit))
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
    """Recompute the whole chain from the database (see :func:`hub.audit.chain.verify`).

    Pending entries are sealed first; any still unsealed (their transaction committed
    meanwhile) are not on the chain yet, and :func:`unsealed` counts them.
    """
    _seal_first(session)
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
    _seal_first(session)
    stmt = _filtered(AuditFilters(since=since, until=until)).order_by(AuditEntry.seq)
    result = session.execute(stmt, execution_options={"yield_per": batch})
    for entry in result.scalars():
        yield to_read(entry).model_dump_json()
