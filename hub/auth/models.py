"""SQLAlchemy rows of authentication: API tokens, stored only as sha256 hashes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, CreatedMixin


class ApiToken(CreatedMixin, Base):
    """A bearer token; the secret itself is never stored, only its sha256."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(20))
    plant_id: Mapped[str | None] = mapped_column(ForeignKey("plants.id"), default=None)
    name: Mapped[str] = mapped_column(String(200), default="")
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
