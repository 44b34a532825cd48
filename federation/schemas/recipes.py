"""Wire models of recipes: versioned, immutable-once-published training specifications."""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from federation.schemas.common import MAX_INT32, InputModel, Label, Page, Slug, Text
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

#: Largest recipe, as compact JSON of its structured parts: a recipe is a training spec of
#: a few kilobytes, never a place to park data (the hub stores and re-serves it to plants).
MAX_RECIPE_BYTES = 64 * 1024


class RecipeStatus(StrEnum):
    """A draft can change; a published recipe never does."""

    DRAFT = "draft"
    PUBLISHED = "published"


def _upgrade_gates(value: Any) -> Any:
    # Recipes stored before policies/ wrote {metric: "rmse.fd001", op, threshold}; they load
    # as the same rule with the plant as its scope (policies.upgrade_legacy_gates).
    return upgrade_legacy_gates(value)


def _check_recipe_size(recipe: InputModel) -> None:
    size = len(json.dumps(recipe.model_dump(mode="json"), separators=(",", ":")))
    if size > MAX_RECIPE_BYTES:
        raise ValueError(f"the recipe is {size} bytes as JSON; at most {MAX_RECIPE_BYTES}")


class RecipeSpec(InputModel):
    """The structured parts of a recipe (at most :data:`MAX_RECIPE_BYTES` as JSON)."""

    preprocessing: dict[str, Any] = Field(default_factory=dict)
    features: dict[str, Any] = Field(default_factory=dict)
    architecture: dict[str, Any] = Field(default_factory=dict)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    data_contract_version: Label = Field("", max_length=100)
    metrics: list[Label] = Field(default_factory=list, max_length=100)
    gates: list[Gate] = Field(default_factory=list, max_length=500)
    description: Text = Field("", max_length=2000)

    _legacy_gates = field_validator("gates", mode="before")(_upgrade_gates)


class RecipeCreate(RecipeSpec):
    """Create a draft recipe version; ``version`` defaults to the next free number."""

    name: Slug
    version: int | None = Field(None, gt=0, le=MAX_INT32)

    @model_validator(mode="after")
    def _bounded_size(self) -> RecipeCreate:
        _check_recipe_size(self)
        return self


class RecipeUpdate(InputModel):
    """Change a draft (published recipes refuse updates)."""

    preprocessing: dict[str, Any] | None = None
    features: dict[str, Any] | None = None
    architecture: dict[str, Any] | None = None
    hyperparameters: dict[str, Any] | None = None
    data_contract_version: Label | None = Field(None, max_length=100)
    metrics: list[Label] | None = Field(None, max_length=100)
    gates: list[Gate] | None = Field(None, max_length=500)
    description: Text | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _bounded_size(self) -> RecipeUpdate:
        _check_recipe_size(self)
        return self

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
