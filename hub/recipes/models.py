"""SQLAlchemy rows of recipes: one row per recipe version."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, CreatedMixin


class Recipe(CreatedMixin, Base):
    """A training recipe version: editable as a draft, immutable once published."""

    __tablename__ = "recipes"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default="draft")
    preprocessing: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    architecture: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data_contract_version: Mapped[str] = mapped_column(String(100), default="")
    metrics: Mapped[list[str]] = mapped_column(JSON, default=list)
    gates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(String(2000), default="")
    published_at: Mapped[dt.datetime | None] = mapped_column(default=None)
