"""SQLAlchemy rows of the registry: plants, baseline models, artifacts, versions, tags, aliases."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from federation.schemas.registry import AliasName, AliasRead, VersionRead
from hub.db import Base, CreatedMixin, utcnow


class Plant(CreatedMixin, Base):
    """A plant (site-level deployment) enrolled with the hub."""

    __tablename__ = "plants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    site: Mapped[str] = mapped_column(String(200), default="")
    lines: Mapped[list[str]] = mapped_column(JSON, default=list)
    hardware_profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class BaselineModel(CreatedMixin, Base):
    """A baseline model family; its versions carry the weights and lineage."""

    __tablename__ = "baseline_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    task: Mapped[str] = mapped_column(String(100), default="")
    dataset: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(String(2000), default="")


class Artifact(CreatedMixin, Base):
    """A blob in the content-addressed artifact store, keyed by its sha256."""

    __tablename__ = "artifacts"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")


class ModelVersion(CreatedMixin, Base):
    """One immutable version of a baseline model with its full lineage."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "version"),
        Index("ix_model_versions_plant_id_id", "plant_id", "id"),
        Index("ix_model_versions_model_id_id", "model_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("baseline_models.id"))
    version: Mapped[str] = mapped_column(String(64))
    plant_id: Mapped[str | None] = mapped_column(ForeignKey("plants.id"), default=None)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), default=None, index=True
    )
    recipe_id: Mapped[int | None] = mapped_column(
        ForeignKey("recipes.id"), default=None, index=True
    )
    artifact_digest: Mapped[str | None] = mapped_column(
        ForeignKey("artifacts.digest"), default=None, index=True
    )
    training_data_fingerprint: Mapped[str] = mapped_column(String(200), default="")
    code_version: Mapped[str] = mapped_column(String(200), default="")
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    description: Mapped[str] = mapped_column(String(2000), default="")
    # Tags are read from this JSON copy (no second query per page); the indexed
    # ``version_tags`` rows exist for filtering and are kept equal by the service.
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    model: Mapped[BaselineModel] = relationship(lazy="joined", innerjoin=True)
    tag_rows: Mapped[list[VersionTag]] = relationship(
        lazy="select", cascade="all, delete-orphan", order_by="VersionTag.key"
    )

    def to_read(self) -> VersionRead:
        """Convert to the wire entity (never hand out the row itself)."""
        return VersionRead(
            id=self.id,
            model=self.model.name,
            version=self.version,
            plant_id=self.plant_id,
            parent_id=self.parent_id,
            recipe_id=self.recipe_id,
            artifact_digest=self.artifact_digest,
            training_data_fingerprint=self.training_data_fingerprint,
            code_version=self.code_version,
            hyperparameters=dict(self.hyperparameters),
            metrics=dict(self.metrics),
            tags=dict(self.tags),
            description=self.description,
            created_at=self.created_at,
            created_by=self.created_by,
        )


class VersionTag(Base):
    """A mutable key/value label on a version (lineage stays immutable, tags do not)."""

    __tablename__ = "version_tags"
    __table_args__ = (Index("ix_version_tags_key_value_version_id", "key", "value", "version_id"),)

    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")


class Alias(Base):
    """Per-plant pointer (champion/challenger/shadow) from a baseline model to a version."""

    __tablename__ = "aliases"

    plant_id: Mapped[str] = mapped_column(ForeignKey("plants.id"), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("baseline_models.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(20), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="system")

    model: Mapped[BaselineModel] = relationship(lazy="joined", innerjoin=True)
    version: Mapped[ModelVersion] = relationship(lazy="joined", innerjoin=True)

    def to_read(self) -> AliasRead:
        """Convert to the wire entity."""
        return AliasRead(
            plant_id=self.plant_id,
            model=self.model.name,
            alias=AliasName(self.alias),
            version_id=self.version_id,
            updated_at=self.updated_at,
            updated_by=self.updated_by,
        )
