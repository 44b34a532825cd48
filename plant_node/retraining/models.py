"""Retraining rows: trigger firings with their evidence, line signals, queue labels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from plant_node.db import Base, CreatedAtMixin, UTCDateTime


class RetrainingFiring(CreatedAtMixin, Base):
    """A trigger that fired: the evidence it fired on, and the request queued for the hub.

    ``id`` is derived from what the trigger fired on (baseline, version, trigger and the
    newest chunk or schedule slot), so evaluating the same records again finds the same
    firing instead of queueing a second request; it is the outbox idempotency key too.
    """

    __tablename__ = "retraining_firings"
    __table_args__ = (
        Index("ix_retraining_firings_trigger_fired_at", "trigger", "fired_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    baseline: Mapped[str] = mapped_column(String(64), nullable=False)
    model_name: Mapped[str] = mapped_column(String(128), nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    policy: Mapped[str] = mapped_column(String(200), nullable=False)
    trigger: Mapped[str] = mapped_column(String(64), nullable=False)
    condition: Mapped[str] = mapped_column(String(32), nullable=False)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    basis: Mapped[str] = mapped_column(String(64), nullable=False)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    labelled_window: Mapped[int] = mapped_column(Integer, nullable=False)
    summary: Mapped[str] = mapped_column(Text, nullable=False)


class LineSignal(CreatedAtMixin, Base):
    """A change the line announced (a new recipe or product mix), for the trigger to read."""

    __tablename__ = "line_signals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    baseline: Mapped[str | None] = mapped_column(String(64), nullable=True)
    value: Mapped[str] = mapped_column(String(200), nullable=False)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class QueueLabel(CreatedAtMixin, Base):
    """A label given through the active-learning queue (counts against the daily budget)."""

    __tablename__ = "queue_labels"
    __table_args__ = (Index("ix_queue_labels_created_at", "created_at"),)

    prediction_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    baseline: Mapped[str] = mapped_column(String(64), nullable=False)
    label: Mapped[float] = mapped_column(Float, nullable=False)
    priority: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str] = mapped_column(String(32), nullable=False)
