"""SQLAlchemy rows of fleet rollouts: the rollout, its plants, its step log, rollbacks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.db import Base, CreatedMixin, utcnow


class Rollout(CreatedMixin, Base):
    """A staged rollout of one version under a rollout plan; the engine's persistent state."""

    __tablename__ = "rollouts"
    __table_args__ = (Index("ix_rollouts_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    plan_ref: Mapped[str] = mapped_column(String(140))
    gate_ref: Mapped[str | None] = mapped_column(String(140), default=None)
    status: Mapped[str] = mapped_column(String(20))
    current_wave: Mapped[int] = mapped_column(default=0)
    #: Wave names in order (index = ``RolloutPlant.wave``).
    waves: Mapped[list[str]] = mapped_column(JSON, default=list)
    failure_handling: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(4000), default="")
    reason: Mapped[str] = mapped_column(String(2000), default="")
    #: The person on whose behalf the engine requests promotions.
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_by_role: Mapped[str] = mapped_column(String(20), default="admin")
    created_by_username: Mapped[str] = mapped_column(String(200), default="")
    created_by_printed_name: Mapped[str] = mapped_column(String(200), default="")
    #: Next step number; every recorded step takes one, so a replayed step is a conflict.
    next_seq: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    plants: Mapped[list[RolloutPlant]] = relationship(
        lazy="selectin", order_by="(RolloutPlant.wave, RolloutPlant.plant_id)", viewonly=True
    )


class RolloutPlant(Base):
    """One plant of a rollout: its wave and stage, and the champion it replaces."""

    __tablename__ = "rollout_plants"
    __table_args__ = (UniqueConstraint("rollout_id", "plant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), index=True)
    plant_id: Mapped[str] = mapped_column(ForeignKey("plants.id"), index=True)
    wave: Mapped[int]
    stage: Mapped[str] = mapped_column(String(20))
    stage_started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    previous_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), default=None
    )
    promotion_id: Mapped[int | None] = mapped_column(ForeignKey("promotions.id"), default=None)
    #: The node's prediction counter when the current stage began (canary counts from it).
    predictions_at_stage: Mapped[int] = mapped_column(default=0)
    detail: Mapped[str] = mapped_column(String(2000), default="")


class RolloutStep(Base):
    """One recorded transition or decision; ``(rollout_id, seq)`` is unique."""

    __tablename__ = "rollout_steps"
    __table_args__ = (UniqueConstraint("rollout_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), index=True)
    seq: Mapped[int]
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    plant_id: Mapped[str | None] = mapped_column(String(64), default=None)
    action: Mapped[str] = mapped_column(String(40))
    from_stage: Mapped[str | None] = mapped_column(String(20), default=None)
    to_stage: Mapped[str | None] = mapped_column(String(20), default=None)
    reason: Mapped[str] = mapped_column(String(4000), default="")
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class Rollback(CreatedMixin, Base):
    """Champion pointed back at one plant (by a call or by a rollout abort)."""

    __tablename__ = "rollbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    plant_id: Mapped[str] = mapped_column(ForeignKey("plants.id"), index=True)
    from_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), default=None
    )
    to_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    rollout_id: Mapped[int | None] = mapped_column(ForeignKey("rollouts.id"), default=None)
    promotion_id: Mapped[int | None] = mapped_column(ForeignKey("promotions.id"), default=None)
    reason: Mapped[str] = mapped_column(String(2000), default="")
