"""SQLAlchemy row of the audit trail: one chained entry, never updated or deleted."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class _EntryPayload:
    """The columns an entry has before and after it is chained (what its hash covers)."""

    at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(300))
    before_json: Mapped[str | None] = mapped_column(Text, default=None)
    after_json: Mapped[str | None] = mapped_column(Text, default=None)
    reason: Mapped[str | None] = mapped_column(String(2000), default=None)
    flags_json: Mapped[str] = mapped_column(String(500), default="[]")


class AuditEntry(_EntryPayload, Base):
    """One entry of the chain; ``entry_hash`` = sha256(``prev_hash`` + canonical JSON).

    The hashed texts are stored verbatim (``at`` as ISO 8601 UTC, ``before``/``after``/
    ``flags`` as canonical JSON), so verification hashes stored bytes and never has to
    re-render a timestamp or a document the way it was first written.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_action_seq", "action", "seq"),
        Index("ix_audit_entries_subject_seq", "subject", "seq"),
        Index("ix_audit_entries_actor_seq", "actor", "seq"),
        Index("ix_audit_entries_at", "at"),
    )

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditPending(_EntryPayload, Base):
    """An entry written but not yet chained (PostgreSQL): the sealer moves it to the chain.

    Writers insert here in their own transaction, without the chain lock; the sealer
    (:func:`hub.audit.service.seal`) takes the lock, numbers pending entries in the order it
    finds them committed, hashes them onto the chain and deletes them from here, all in one
    transaction. ``at`` is the time of the write, so it need not rise with ``seq``.
    """

    __tablename__ = "audit_pending"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
