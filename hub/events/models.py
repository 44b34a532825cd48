"""SQLAlchemy rows of plant events (reports delivered by plant node outboxes)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, utcnow


class PlantEvent(Base):
    """One event a plant reported; ``event_id`` is the sender's id, unique per plant."""

    __tablename__ = "plant_events"
    __table_args__ = (
        UniqueConstraint("plant_id", "event_id"),
        Index("ix_plant_events_plant_id_seq", "plant_id", "seq"),
        Index("ix_plant_events_kind_seq", "kind", "seq"),
    )

    seq: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64))
    plant_id: Mapped[str] = mapped_column(ForeignKey("plants.id"))
    kind: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[dt.datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
