"""SQLAlchemy rows of campaigns and of their finished rounds."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, CreatedMixin, utcnow


class Campaign(CreatedMixin, Base):
    """One federated fine-tuning campaign and where it is.

    ``flower_run_id`` is a string: Flower's run ids are unsigned 64-bit and do not fit a
    signed BIGINT. ``options`` holds the optional request fields (privacy, data budget).
    """

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("baseline_models.id"))
    parent_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    recipe_id: Mapped[int] = mapped_column(ForeignKey("recipes.id"))
    plants: Mapped[list[str]] = mapped_column(JSON, default=list)
    strategy: Mapped[str] = mapped_column(String(32))
    rounds: Mapped[int]
    local_epochs: Mapped[int]
    min_participants: Mapped[int]
    personalize_epochs: Mapped[int] = mapped_column(default=0)
    round_timeout_seconds: Mapped[float] = mapped_column(Float)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), index=True)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    failure_code: Mapped[str | None] = mapped_column(String(64), default=None)
    failure_detail: Mapped[str] = mapped_column(String(2000), default="")
    flower_run_id: Mapped[str | None] = mapped_column(String(20), default=None)
    rounds_completed: Mapped[int] = mapped_column(default=0)
    rejections: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    dropouts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    participants: Mapped[list[str]] = mapped_column(JSON, default=list)
    samples_per_plant: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), default=None
    )
    personalized_version_ids: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class CampaignRound(Base):
    """One finished round of a campaign, as the ServerApp recorded it (a ``RoundRecord``)."""

    __tablename__ = "campaign_rounds"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    round: Mapped[int] = mapped_column(primary_key=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
