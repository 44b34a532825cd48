"""SQLAlchemy rows of node liveness: one per plant the hub has heard from."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, utcnow


class PlantLiveness(Base):
    """Whether a plant is in a stale episode, and since when (kept by the liveness job)."""

    __tablename__ = "plant_liveness"

    plant_id: Mapped[str] = mapped_column(ForeignKey("plants.id"), primary_key=True)
    #: ``stale`` while the episode lasts, ``live`` after the plant spoke again.
    status: Mapped[str] = mapped_column(String(8))
    #: When the job found the plant silent (the ``node.stale`` webhook).
    stale_since: Mapped[dt.datetime]
    #: The last time the plant was heard from before the episode.
    last_seen_at: Mapped[dt.datetime]
    recovered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
