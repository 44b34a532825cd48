"""SQLAlchemy rows of retraining requests: what a plant asked for, and how the hub decided."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, utcnow


class RetrainingRequest(Base):
    """One fired trigger of one plant and the hub's decision on it.

    ``(plant_id, request_id)`` is unique: the request id is the plant outbox's idempotency
    key, so a redelivery finds the stored row instead of deciding twice.
    """

    __tablename__ = "retraining_requests"
    __table_args__ = (
        UniqueConstraint("plant_id", "request_id"),
        Index("ix_retraining_requests_trigger", "plant_id", "trigger", "fired_at"),
        Index("ix_retraining_requests_model", "model", "condition", "fired_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plant_id: Mapped[str] = mapped_column(String(64), ForeignKey("plants.id"))
    request_id: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    policy_ref: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(64))
    condition: Mapped[str] = mapped_column(String(40))
    fired_at: Mapped[dt.datetime]
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    labelled_window: Mapped[int] = mapped_column(default=0)
    note: Mapped[str] = mapped_column(String(2000), default="")
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decision: Mapped[str] = mapped_column(String(20), index=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The plants whose requests show the same change (a federated decision spans them).
    plants: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The retraining policy's evaluation of the evidence, as recorded on the audit trail.
    evaluation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    audit_seq: Mapped[int | None] = mapped_column(default=None)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), default=None)
    candidate_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), default=None
    )
    candidate_outcome: Mapped[str | None] = mapped_column(String(20), default=None)
    promotion_id: Mapped[int | None] = mapped_column(ForeignKey("promotions.id"), default=None)
