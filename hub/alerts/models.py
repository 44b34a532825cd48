"""SQLAlchemy rows of alerts: the hub's state of each plant's monitoring alert rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, utcnow


class HubAlert(Base):
    """The newest episode of one alert rule of one plant's model version (open or cleared).

    One row per (plant, model, version, rule key): a new episode of the same rule reopens
    the row, so ``alert.raised`` and ``alert.cleared`` alternate per rule.
    """

    __tablename__ = "hub_alerts"
    __table_args__ = (UniqueConstraint("plant_id", "model_name", "model_version", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plant_id: Mapped[str] = mapped_column(ForeignKey("plants.id"))
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    #: ``open`` or ``cleared``.
    status: Mapped[str] = mapped_column(String(8))
    #: The alert as the raising report summarised it (value, reference, sigmas, features).
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raised_report_id: Mapped[str] = mapped_column(String(64))
    raised_window_end: Mapped[dt.datetime]
    cleared_report_id: Mapped[str | None] = mapped_column(String(64), default=None)
    cleared_window_end: Mapped[dt.datetime | None] = mapped_column(default=None)
    #: End of the newest report window that changed this row (older reports never do).
    last_window_end: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
