"""Typed declarative rules: an evidence path, a comparator, a threshold and a scope."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policies.evidence import is_known_metric
from policies.refs import Slug


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ScopeLevel(StrEnum):
    """Where a rule applies: everywhere, at one plant, or at one product line."""

    FLEET = "fleet"
    PLANT = "plant"
    PRODUCT_LINE = "product_line"


class Comparator(StrEnum):
    """How an observed value is compared with a rule's threshold."""

    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="

    @property
    def negated(self) -> Comparator:
        """Return the comparator that holds exactly when this one does not."""
        return _NEGATED[self]

    def holds(self, observed: Any, threshold: Any) -> bool:
        """Return ``observed <op> threshold``.

        Parameters
        ----------
        observed
            The observed value.
        threshold
            The rule's threshold, of a comparable type.

        Returns
        -------
        bool
            Whether the comparison holds.
        """
        if self is Comparator.EQ:
            return bool(observed == threshold)
        if self is Comparator.NE:
            return bool(observed != threshold)
        if self is Comparator.LT:
            return bool(observed < threshold)
        if self is Comparator.LE:
            return bool(observed <= threshold)
        if self is Comparator.GT:
            return bool(observed > threshold)
        return bool(observed >= threshold)


_NEGATED = {
    Comparator.LT: Comparator.GE,
    Comparator.LE: Comparator.GT,
    Comparator.GT: Comparator.LE,
    Comparator.GE: Comparator.LT,
    Comparator.EQ: Comparator.NE,
    Comparator.NE: Comparator.EQ,
}


class Scope(_Frozen):
    """The fleet, one plant or one product line; plant and line names compare case-insensitively.

    Parameters
    ----------
    level
        ``fleet`` (the default), ``plant`` or ``product_line``.
    value
        The plant or product line; ``None`` for the fleet.
    """

    level: ScopeLevel = ScopeLevel.FLEET
    value: str | None = Field(None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _value_matches_level(self) -> Scope:
        if self.level is ScopeLevel.FLEET and self.value is not None:
            raise ValueError("a fleet scope names no value")
        if self.level is not ScopeLevel.FLEET and self.value is None:
            raise ValueError(f"a {self.level.value} scope names its {self.level.value}")
        return self

    def applies_to(self, plant: str | None, product_line: str | None) -> bool:
        """Tell whether evidence about ``plant`` / ``product_line`` falls in this scope.

        Parameters
        ----------
        plant
            The evidence's plant.
        product_line
            The evidence's product line.

        Returns
        -------
        bool
            Always ``True`` for the fleet.
        """
        if self.level is ScopeLevel.FLEET:
            return True
        other = plant if self.level is ScopeLevel.PLANT else product_line
        return other is not None and other.casefold() == (self.value or "").casefold()

    def __str__(self) -> str:
        if self.level is ScopeLevel.FLEET:
            return "fleet"
        return f"{self.level.value.replace('_', ' ')} {self.value}"


FLEET = Scope()


class Gate(_Frozen):
    """One rule: ``metric op threshold`` must hold on the evidence, within ``scope``.

    Parameters
    ----------
    name
        The rule's name, unique within its policy (reasons and overrides name it).
    metric
        An evidence path from :data:`~policies.evidence.KNOWN_EVIDENCE`.
    op
        The comparator.
    threshold
        A finite number, or a bool / string for ``==`` and ``!=``.
    scope
        Where the rule applies; evidence about other plants makes it ``not_applicable``.
    required
        Whether a failing or missing value fails the decision (``False``: advisory only).
    relative_to
        Another evidence path; when set, the observed value is how many percent worse the
        metric is than this reference (in the metric's own direction), e.g. estimated rmse
        vs the champion's.
    samples
        An evidence path counting the samples behind the value.
    min_samples
        Fewer than this many ``samples`` make the value ``missing`` (not enough evidence).
    description
        Free text for people.
    """

    name: Slug
    metric: str = Field(min_length=1, max_length=200)
    op: Comparator
    threshold: float | bool | str
    scope: Scope = FLEET
    required: bool = True
    relative_to: str | None = Field(None, max_length=200)
    samples: str | None = Field(None, max_length=200)
    min_samples: int = Field(0, ge=0)
    description: str = Field("", max_length=1000)

    @field_validator("metric", "relative_to", "samples")
    @classmethod
    def _known_path(cls, value: str | None) -> str | None:
        if value is not None and not is_known_metric(value):
            raise ValueError(
                f"unknown evidence metric {value!r} (see policies.KNOWN_EVIDENCE, e.g. "
                "'holdout.rmse', 'int8.parity_ok')"
            )
        return value

    @field_validator("threshold", mode="before")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        # Checked before the union so that a bad threshold is one error at its own path.
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("threshold must be a finite number")
        if isinstance(value, str) and len(value) > 200:
            raise ValueError("threshold text is at most 200 characters")
        if not isinstance(value, int | float | str):  # bool is an int
            raise ValueError("threshold is a number, a bool or a string")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Gate:
        numeric = isinstance(self.threshold, int | float) and not isinstance(self.threshold, bool)
        if not numeric and self.op not in (Comparator.EQ, Comparator.NE):
            raise ValueError(
                f"a {type(self.threshold).__name__} threshold compares only with == or !="
            )
        if self.relative_to is not None and not numeric:
            raise ValueError("relative_to needs a numeric threshold (percent)")
        if self.min_samples > 0 and self.samples is None:
            raise ValueError("min_samples needs samples (the evidence path that counts them)")
        return self
