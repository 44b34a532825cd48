"""SQLAlchemy rows of authentication: users and their API tokens (secrets stored hashed)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, CreatedMixin


class User(CreatedMixin, Base):
    """A person (or a service) who holds tokens and may sign records.

    ``signing_secret_hash`` is an argon2 hash of the second signing component; the secret
    itself is never stored.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    printed_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    plant_id: Mapped[str | None] = mapped_column(ForeignKey("plants.id"), default=None)
    signing_secret_hash: Mapped[str | None] = mapped_column(String(200), default=None)

    @property
    def has_signing_secret(self) -> bool:
        """Whether the user can sign (a signing secret is set)."""
        return self.signing_secret_hash is not None


class ApiToken(CreatedMixin, Base):
    """A bearer token of one user; the secret itself is never stored, only its sha256."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(20))
    plant_id: Mapped[str | None] = mapped_column(ForeignKey("plants.id"), default=None)
    name: Mapped[str] = mapped_column(String(200), default="")
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
