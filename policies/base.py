"""What every policy document has: kind, id, version, title, and the bounds of local overrides."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policies.refs import Slug, format_ref


class PolicyKind(StrEnum):
    """The kinds of policy document."""

    PROMOTION_GATE = "promotion_gate"
    ROLLOUT = "rollout"
    RETRAINING = "retraining"
    DATA_SHARING = "data_sharing"
    RETENTION = "retention"
    COST = "cost"


class Frozen(BaseModel):
    """Base of every policy model: unknown keys refused, immutable, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


#: Fields no override may touch: they are what a reference names.
UNOVERRIDABLE = frozenset({"id", "version", "kind", "overridable"})


class OverrideBound(Frozen):
    """A field a plant may override, and within which bounds.

    Parameters
    ----------
    field
        Dotted path into the document; a list element is named by its ``name`` (or its
        index), e.g. ``rules.max_rmse_fd002.threshold`` or ``approvals.required``.
    min, max
        Inclusive numeric bounds.
    choices
        The allowed values (instead of, or besides, numeric bounds).
    plants
        The plants allowed to override it (``None``: every plant).
    description
        Why the bound is what it is.
    """

    field: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")
    min: float | None = None
    max: float | None = None
    choices: list[float | bool | str] | None = Field(None, min_length=1, max_length=100)
    plants: list[str] | None = Field(None, min_length=1, max_length=1000)
    description: str = Field("", max_length=1000)

    @model_validator(mode="after")
    def _bounded(self) -> OverrideBound:
        if self.min is None and self.max is None and self.choices is None:
            raise ValueError("an override bound needs min, max or choices")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        if self.field.split(".", 1)[0] in UNOVERRIDABLE:
            raise ValueError(f"{self.field!r} can never be overridden")
        return self

    def describe(self) -> str:
        """Return the bound in words, e.g. ``"min 20, max 26 (plants fd002)"``."""
        parts = []
        if self.min is not None:
            parts.append(f"min {_num(self.min)}")
        if self.max is not None:
            parts.append(f"max {_num(self.max)}")
        if self.choices is not None:
            parts.append("one of " + ", ".join(repr(c) for c in self.choices))
        text = ", ".join(parts)
        if self.plants is not None:
            text += " (plants " + ", ".join(self.plants) + ")"
        return text

    def refusal(self, value: Any, plant: str) -> str | None:
        """Return the violated bound in words, or ``None`` when ``value`` is allowed at ``plant``.

        Parameters
        ----------
        value
            The proposed value.
        plant
            The plant that overrides.

        Returns
        -------
        str | None
            ``None`` when allowed.
        """
        if self.plants is not None and plant.casefold() not in {p.casefold() for p in self.plants}:
            return "plants " + ", ".join(self.plants)
        if self.choices is not None and value not in self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.min is not None or self.max is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return self.describe() + " (a number)"
            if not math.isfinite(value):
                return self.describe() + " (a finite number)"
            if self.min is not None and value < self.min:
                return f"min {_num(self.min)}"
            if self.max is not None and value > self.max:
                return f"max {_num(self.max)}"
        return None


def _num(x: float) -> str:
    return f"{x:g}"


def resolve(data: Any, path: str) -> tuple[Any, str | int]:
    """Find the container holding ``path``'s last segment in a dumped document.

    Parameters
    ----------
    data
        The document as plain data (``model_dump()``).
    path
        A dotted path; a list element is named by its ``name`` (``id``, ``record_class``)
        or by its index.

    Returns
    -------
    tuple[Any, str | int]
        The container (dict or list) and the key or index within it.

    Raises
    ------
    KeyError
        If the path does not lead to an existing field.
    """
    parts = path.split(".")
    node = data
    for i, part in enumerate(parts):
        key: str | int
        if isinstance(node, dict):
            if part not in node:
                raise KeyError(path)
            key = part
        elif isinstance(node, list):
            key = _list_index(node, part, path)
        else:
            raise KeyError(path)
        if i == len(parts) - 1:
            return node, key
        node = node[key]
    raise KeyError(path)


_ELEMENT_KEYS = ("name", "id", "record_class")


def _list_index(items: list[Any], part: str, path: str) -> int:
    for index, item in enumerate(items):
        if isinstance(item, dict) and part in (item.get(k) for k in _ELEMENT_KEYS):
            return index
    if part.isdigit() and int(part) < len(items):
        return int(part)
    raise KeyError(path)


class PolicyBase(Frozen):
    """Fields every policy document has.

    Parameters
    ----------
    id
        The document's slug.
    version
        Its version (``>= 1``); a published ``id@version`` never changes.
    title
        A one-line title.
    description
        Free text.
    overridable
        The fields a plant may override, and their bounds.
    """

    id: Slug
    version: int = Field(ge=1, le=999_999_999)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    overridable: list[OverrideBound] = Field(default_factory=list, max_length=200)

    @property
    def ref(self) -> str:
        """``id@version``, how everything else names this document."""
        return format_ref(self.id, self.version)

    @field_validator("version", mode="before")
    @classmethod
    def _integer_version(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("version is a whole number >= 1")
        return value

    @model_validator(mode="after")
    def _overridable_fields_exist(self) -> PolicyBase:
        data = self.model_dump(mode="json")
        seen: set[str] = set()
        for bound in self.overridable:
            if bound.field in seen:
                raise ValueError(f"overridable field {bound.field!r} is listed twice")
            seen.add(bound.field)
            try:
                container, key = resolve(data, bound.field)
            except KeyError:
                raise ValueError(
                    f"overridable field {bound.field!r} does not exist in this document"
                ) from None
            current = container[key]
            if isinstance(current, dict | list):
                raise ValueError(f"overridable field {bound.field!r} is not a single value")
            if bound.refusal(current, (bound.plants or [""])[0]) is not None:
                raise ValueError(
                    f"overridable field {bound.field!r}: the document's own value "
                    f"{current!r} is outside its bound {bound.describe()}"
                )
        return self
