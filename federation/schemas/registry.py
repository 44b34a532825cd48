"""Wire models of the model registry: plants, baseline models, artifacts, versions, aliases."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import Field

from federation.schemas.common import (
    DbId,
    Identifier,
    InputModel,
    Label,
    Page,
    Sha256,
    Slug,
    TagKey,
    TagValue,
    Text,
    VersionLabel,
    WireModel,
)


class AliasName(StrEnum):
    """Per-plant deployment slots of a baseline model."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"
    SHADOW = "shadow"


# ---------------------------------------------------------------- plants


class HardwareProfile(InputModel):
    """What the plant's edge PC can run (used to pick export targets)."""

    cpu: Label = Field("", max_length=200)
    cores: int | None = Field(None, gt=0, le=1_000_000)
    memory_gb: float | None = Field(None, gt=0, le=1e9)
    accelerator: Label | None = Field(None, max_length=100)
    os: Label = Field("", max_length=100)
    extra: dict[str, Any] = Field(default_factory=dict)


class PlantBase(InputModel):
    """Fields a plant is enrolled with (names are one line: no NUL or control characters)."""

    name: Label = Field(min_length=1, max_length=200)
    site: Label = Field("", max_length=200)
    lines: list[Identifier] = Field(default_factory=list, max_length=200)
    hardware_profile: HardwareProfile = Field(default_factory=HardwareProfile)


class PlantCreate(PlantBase):
    """Enroll a plant; ``id`` is its natural key (re-sending the same body is a no-op)."""

    id: Identifier


class PlantUpdate(InputModel):
    """Change any subset of a plant's descriptive fields."""

    name: Label | None = Field(None, min_length=1, max_length=200)
    site: Label | None = Field(None, max_length=200)
    lines: list[Identifier] | None = None
    hardware_profile: HardwareProfile | None = None


class PlantRead(PlantBase):
    """A plant as stored."""

    id: str
    created_at: dt.datetime
    created_by: str


class PlantPage(Page[PlantRead]):
    """A page of plants."""


# ---------------------------------------------------------------- baseline models


class BaselineModelCreate(InputModel):
    """Register a baseline model (the family that versions belong to)."""

    name: Slug
    task: Label = Field("", max_length=100, description="e.g. rul_regression")
    dataset: Label = Field("", max_length=100, description="Dataset family, e.g. cmapss or ai4i")
    description: Text = Field("", max_length=2000)


class BaselineModelRead(BaselineModelCreate):
    """A baseline model as stored."""

    id: int
    created_at: dt.datetime
    created_by: str


class BaselineModelPage(Page[BaselineModelRead]):
    """A page of baseline models."""


# ---------------------------------------------------------------- artifacts


class ArtifactRead(WireModel):
    """A content-addressed blob in the artifact store."""

    digest: Sha256
    size_bytes: int
    media_type: str
    created_at: dt.datetime
    created_by: str


# ---------------------------------------------------------------- versions


class VersionCreate(InputModel):
    """Register a model version with its full lineage; ``(model, version)`` is its natural key."""

    model: Slug
    version: VersionLabel
    plant_id: Identifier | None = Field(None, description="Plant it was fine-tuned for, if any.")
    parent_id: DbId | None = Field(None, description="Version this one was derived from.")
    recipe_id: DbId | None = Field(
        None, description="Published recipe version it was trained with."
    )
    artifact_digest: Sha256 | None = Field(None, description="sha256 of an uploaded artifact.")
    training_data_fingerprint: Label = Field("", max_length=200)
    code_version: Label = Field("", max_length=200)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(
        default_factory=dict, max_length=200, description="Held-out metrics (finite numbers)."
    )
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=200)
    description: Text = Field("", max_length=2000)


class VersionBatchCreate(InputModel):
    """Many versions in one transaction: all are registered or none."""

    versions: list[VersionCreate] = Field(min_length=1)


class VersionRead(WireModel):
    """A model version with its lineage."""

    id: int
    model: str
    version: str
    plant_id: str | None
    parent_id: int | None
    recipe_id: int | None
    artifact_digest: str | None
    training_data_fingerprint: str
    code_version: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    description: str
    created_at: dt.datetime
    created_by: str


class VersionPage(Page[VersionRead]):
    """A page of versions, newest first."""


class VersionBatchRead(WireModel):
    """Result of a batch create, in request order."""

    items: list[VersionRead]


class TagSet(InputModel):
    """Set one tag value."""

    value: TagValue


class FieldChange(WireModel):
    """One field that differs between two versions (dotted path into nested fields)."""

    field: str
    a: Any = None
    b: Any = None


class VersionDiff(WireModel):
    """What changed between version ``a`` and version ``b``."""

    a: VersionRead
    b: VersionRead
    changes: list[FieldChange]


# ---------------------------------------------------------------- aliases & assignments


class AliasSet(InputModel):
    """Point an alias at a version."""

    version_id: DbId


class AliasRead(WireModel):
    """An alias of a plant for one baseline model."""

    plant_id: str
    model: str
    alias: AliasName
    version_id: int
    updated_at: dt.datetime
    updated_by: str


class AliasList(WireModel):
    """Every alias of a plant."""

    items: list[AliasRead]


class Assignment(WireModel):
    """What a plant should run: one alias with the artifact to fetch."""

    model: str
    alias: AliasName
    version_id: int
    version: str
    recipe_id: int | None
    artifact_digest: str | None
    artifact_size_bytes: int | None
    updated_at: dt.datetime


class AssignmentList(WireModel):
    """Every assignment of one plant."""

    plant_id: str
    items: list[Assignment]
