"""Cost policies that price the business-impact counts, read from the hub's YAML file.

The documents follow the ``cost`` kind of the policy schema (``policies.CostPolicy`` on the
gov-policies branch: ``id``, ``version``, ``kind``, ``title``, ``description``,
``overridable``, plus the same price fields). Until that package is merged they come from
``HubSettings.cost_policy_file``; after the merge :class:`CostPolicy` can become an alias of
``policies.CostPolicy`` (same fields, same formula)::

    default:            # applies to every plant without its own document
      id: cost-default
      version: 1
      kind: cost
      title: Fleet default
      currency: EUR
      cost_per_unplanned_failure_hour: 12000
      hours_per_failure: 6
      cost_per_false_alarm: 800
      cost_per_planned_intervention: 2500
    plants:
      plant-07: {id: cost-plant-07, version: 2, kind: cost, title: ..., currency: USD, ...}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from federation.errors import InvalidInput

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class CostPolicy(BaseModel):
    """Prices of outcomes at one plant, in its currency (a ``cost`` policy document)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    version: int = Field(ge=1)
    kind: Literal["cost"] = "cost"
    title: str = Field(max_length=200)
    description: str = Field("", max_length=2000)
    overridable: list[dict[str, Any]] = Field(default_factory=list)
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")
    cost_per_unplanned_failure_hour: float = Field(ge=0, description="Cost of one downtime hour.")
    hours_per_failure: float = Field(gt=0, le=10_000, description="Hours a failure stops.")
    cost_per_false_alarm: float = Field(ge=0, description="Cost of acting on a false alarm.")
    cost_per_planned_intervention: float = Field(
        0, ge=0, description="Cost of the planned repair a caught failure still needs."
    )

    @property
    def ref(self) -> str:
        """``id@version``, printed beside every figure it priced."""
        return f"{self.id}@{self.version}"


class CostPolicies(BaseModel):
    """The file: a fleet default and per-plant documents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: CostPolicy | None = None
    plants: dict[str, CostPolicy] = Field(default_factory=dict)

    def for_plant(self, plant_id: str) -> CostPolicy | None:
        """Return the plant's own document, else the default, else None."""
        return self.plants.get(plant_id, self.default)


def load(path: Path | None) -> CostPolicies:
    """Read and validate the cost policy file (none configured: no prices).

    Raises
    ------
    InvalidInput
        When the file is missing, not YAML, or does not follow the schema.
    """
    if path is None:
        return CostPolicies()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return CostPolicies.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise InvalidInput(f"The hub's cost policy file {path} cannot be used: {exc}") from exc
