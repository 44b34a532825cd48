"""SQLAlchemy rows of node authentication: API keys, stored only as sha256 hashes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from plant_node.db import Base, CreatedAtMixin, UTCDateTime


class NodeKey(CreatedAtMixin, Base):
    """A bearer key of the node's API; the secret itself is never stored, only its sha256."""

    __tablename__ = "node_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
