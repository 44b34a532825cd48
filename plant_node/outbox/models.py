"""Outbox rows: one per message bound for the hub, ordered by ``seq`` within its stream."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plant_node.db import Base, CreatedAtMixin, UTCDateTime, utcnow


class OutboxStatus(StrEnum):
    """Lifecycle of an outbox row."""

    PENDING = "pending"
    DELIVERED = "delivered"
    REJECTED = "rejected"  # the hub refused it permanently; kept for inspection, never resent
    # the hub holds this id with other content (409) after every retry: an operator decides
    CONFLICT = "conflict"


class OutboxStream(Base):
    """Per-stream sequence counter; updating it serializes concurrent enqueues on one stream."""

    __tablename__ = "outbox_streams"

    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class OutboxItem(CreatedAtMixin, Base):
    """A message waiting for (or done with) delivery to the hub."""

    __tablename__ = "outbox_items"
    __table_args__ = (
        UniqueConstraint("stream", "seq"),
        UniqueConstraint("idempotency_key"),
        Index("ix_outbox_items_stream_status_seq", "stream", "status", "seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stream: Mapped[str] = mapped_column(String(64), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
