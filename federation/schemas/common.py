"""Shapes shared by every list endpoint and constrained identifier types."""

from __future__ import annotations

import math
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

T = TypeVar("T")

#: Largest value of an INTEGER column, which every row id of the hub is: 32 bits on
#: PostgreSQL (SQLite's 64-bit limit is looser). A larger id is refused by the schema (422)
#: instead of overflowing the driver (a 500: "integer out of range" on PostgreSQL, an
#: OverflowError past 2**63-1 on SQLite).
MAX_INT32 = 2**31 - 1
MAX_DB_ID = MAX_INT32
#: A row id as a field: positive and within :data:`MAX_DB_ID`.
DbId = Annotated[int, Field(ge=1, le=MAX_DB_ID)]

#: One line of text (names, sites, labels): no NUL and no control characters.
Label = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]*$")]
#: Free text (descriptions): tabs and line breaks allowed, NUL and other controls refused.
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]

#: Plant and other natural identifiers: short, URL-safe, case-sensitive.
Identifier = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", max_length=64)
]
#: Names of baseline models and recipes: lowercase slugs.
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", max_length=64)]
#: A model version label such as ``1.4`` or ``2026.11.1+fd001``.
VersionLabel = Annotated[
    str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$", max_length=64)
]
#: Lowercase hex sha256 digest.
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
#: Tag keys are slugs; values are short free text.
TagKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")]
TagValue = Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$")]


class WireModel(BaseModel):
    """Base of every wire model: unknown fields refused, finite floats only, ORM rows accepted.

    ``allow_inf_nan=False``: NaN and Infinity are not JSON and cannot be stored faithfully
    (they came back as null and broke the read schemas), so a float field refuses them.
    """

    model_config = ConfigDict(extra="forbid", from_attributes=True, allow_inf_nan=False)


def _check_json_value(value: Any, depth: int = 0) -> None:
    """Raise ValueError for a NUL in any string or a non-finite float, at any depth."""
    if depth > 32:
        raise ValueError("nested deeper than 32 levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("NUL characters are not allowed")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and Infinity are not allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json_value(key, depth + 1)
            _check_json_value(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_json_value(item, depth + 1)


class InputModel(WireModel):
    """Base of request bodies: also no NUL and no NaN/Infinity inside free-form JSON fields.

    Typed fields are covered by :class:`WireModel` and the :data:`Label`/:data:`Text` types;
    this check reaches into ``dict[str, Any]`` values (hyperparameters, payloads) that would
    otherwise carry a NUL (PostgreSQL refuses it: a 500) or NaN into the database.
    """

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_or_non_finite(cls, value: Any) -> Any:
        _check_json_value(value)
        return value


class Page(WireModel, Generic[T]):
    """One page of a list; pass ``next_page_token`` back to get the next one."""

    items: list[T]
    next_page_token: str | None = Field(
        None, description="Opaque token for the next page; absent on the last page."
    )
