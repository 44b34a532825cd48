"""SQLAlchemy rows of governance: policies, promotion requests, signatures, lifecycle states."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.db import Base, CreatedMixin, utcnow


class StoredPolicy(CreatedMixin, Base):
    """A published policy document; never updated once written (``id@version`` is unique)."""

    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("policy_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))

    @property
    def ref(self) -> str:
        """``id@version``."""
        return f"{self.policy_id}@{self.version}"


class Promotion(Base):
    """One request to put a version into a plant's alias, with its frozen evidence and decision.

    Evidence, decision and binding are written once, when the request is made; only
    ``status`` and ``decided_at`` change, once, when the request is decided.
    """

    __tablename__ = "promotions"
    __table_args__ = (
        Index("ix_promotions_plant_id_id", "plant_id", "id"),
        Index("ix_promotions_version_id", "version_id"),
        # At most one pending request per version, plant and alias, even under races.
        Index(
            "uq_promotions_pending",
            "version_id",
            "plant_id",
            "alias",
            unique=True,
            postgresql_where=text("status = 'pending_approval'"),
            sqlite_where=text("status = 'pending_approval'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    plant_id: Mapped[str] = mapped_column(ForeignKey("plants.id"))
    alias: Mapped[str] = mapped_column(String(20))
    policy_ref: Mapped[str | None] = mapped_column(String(140), default=None)
    status: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str] = mapped_column(String(2000), default="")
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    evidence_sha256: Mapped[str] = mapped_column(String(64))
    binding_sha256: Mapped[str] = mapped_column(String(64))
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    approvals_required: Mapped[int] = mapped_column(default=1)
    approver_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    break_glass: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    signatures: Mapped[list[Signature]] = relationship(
        lazy="selectin", order_by="Signature.id", viewonly=True
    )


class Signature(Base):
    """An electronic signature (21 CFR 11.50): who, when, what it means, bound to one record.

    Rows are only ever inserted: the service has no update or delete, and the binding hash
    ties the signature to the version, artifact, policy and evidence it was applied to.
    """

    __tablename__ = "signatures"

    id: Mapped[int] = mapped_column(primary_key=True)
    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(200))
    printed_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    meaning: Mapped[str] = mapped_column(String(20))
    signed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    comment: Mapped[str] = mapped_column(String(2000), default="")
    binding_sha256: Mapped[str] = mapped_column(String(64))


class VersionLifecycle(Base):
    """Where a version stands at a plant (candidate ... champion, retired, refused)."""

    __tablename__ = "version_lifecycle"

    plant_id: Mapped[str] = mapped_column(ForeignKey("plants.id"), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    promotion_id: Mapped[int | None] = mapped_column(ForeignKey("promotions.id"), default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="system")
