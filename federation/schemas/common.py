"""Shapes shared by every list endpoint and constrained identifier types."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")

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
TagValue = Annotated[str, StringConstraints(max_length=256)]


class WireModel(BaseModel):
    """Base of every wire model: unknown fields are refused, ORM rows are accepted."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)


class Page(WireModel, Generic[T]):
    """One page of a list; pass ``next_page_token`` back to get the next one."""

    items: list[T]
    next_page_token: str | None = Field(
        None, description="Opaque token for the next page; absent on the last page."
    )
