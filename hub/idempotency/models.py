"""SQLAlchemy rows of idempotency keys: what a retried create must replay."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, CreatedMixin


class IdempotencyRecord(CreatedMixin, Base):
    """One ``Idempotency-Key`` a caller used, the hash of its request and what it created."""

    __tablename__ = "idempotency_keys"

    actor: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    scope: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    resource_ref: Mapped[str] = mapped_column(Text)
