"""Wire models of recipes: versioned, immutable-once-published training specifications."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from federation.schemas.common import Page, Slug, WireModel
from policies import Gate, upgrade_legacy_gates

__all__ = [
    "Gate",
    "RecipeCreate",
    "RecipePage",
    "RecipeRead",
    "RecipeSpec",
    "RecipeStatus",
    "RecipeUpdate",
]


class RecipeStatus(StrEnum):
    """A draft can change; a published recipe never does."""

    DRAFT = "draft"
    PUBLISHED = "published"


def _upgrade_gates(value: Any) -> Any:
    # Recipes stored before policies/ wrote {metric: "rmse.fd001", op, threshold}; they load
    # as the same rule with the plant as its scope (policies.upgrade_legacy_gates).
    return upgrade_legacy_gates(value)


class RecipeSpec(WireModel):
    """The structured parts of a recipe."""

    preprocessing: dict[str, Any] = Field(default_factory=dict)
    features: dict[str, Any] = Field(default_factory=dict)
    architecture: dict[str, Any] = Field(default_factory=dict)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    data_contract_version: str = Field("", max_length=100)
    metrics: list[str] = Field(default_factory=list)
    gates: list[Gate] = Field(default_factory=list, max_length=500)
    description: str = Field("", max_length=2000)

    _legacy_gates = field_validator("gates", mode="before")(_upgrade_gates)


class RecipeCreate(RecipeSpec):
    """Create a draft recipe version; ``version`` defaults to the next free number."""

    name: Slug
    version: int | None = Field(None, gt=0)


class RecipeUpdate(WireModel):
    """Change a draft (published recipes refuse updates)."""

    preprocessing: dict[str, Any] | None = None
    features: dict[str, Any] | None = None
    architecture: dict[str, Any] | None = None
    hyperparameters: dict[str, Any] | None = None
    data_contract_version: str | None = Field(None, max_length=100)
    metrics: list[str] | None = None
    gates: list[Gate] | None = Field(None, max_length=500)
    description: str | None = Field(None, max_length=2000)

    _legacy_gates = field_validator("gates", mode="before")(_upgrade_gates)


class RecipeRead(RecipeSpec):
    """A recipe version as stored."""

    id: int
    name: str
    version: int
    status: RecipeStatus
    created_at: dt.datetime
    created_by: str
    published_at: dt.datetime | None = None


class RecipePage(Page[RecipeRead]):
    """A page of recipe versions."""
