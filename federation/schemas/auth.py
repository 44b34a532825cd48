"""Wire models of hub authentication: roles, users, tokens and the calling principal."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from federation.schemas.common import Identifier, InputModel, Label, Page, WireModel

#: Login names of people (and of the service users tokens were migrated to).
Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", max_length=64)]
#: A person's printed name, as shown on every signature (21 CFR 11.50).
PrintedName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$"
    ),
]


class Role(StrEnum):
    """What a token may do on the hub."""

    ADMIN = "admin"
    DATA_SCIENTIST = "data_scientist"
    PLANT = "plant"
    EXECUTIVE = "executive"


def _check_plant_binding(role: Role, plant_id: str | None, what: str) -> None:
    if role == Role.PLANT and not plant_id:
        raise ValueError(f"a plant {what} must be bound to a plant (plant_id)")
    if role != Role.PLANT and plant_id:
        raise ValueError(f"only plant {what}s are bound to a plant")


class UserCreate(InputModel):
    """Request to add a user account; ``plant`` users must name their plant."""

    username: Username
    printed_name: PrintedName
    role: Role
    plant_id: Identifier | None = None

    @model_validator(mode="after")
    def _plant_binding(self) -> UserCreate:
        _check_plant_binding(self.role, self.plant_id, "user")
        return self


class UserRead(WireModel):
    """A user account as listed: never the signing secret, only whether one is set."""

    id: int
    username: str
    printed_name: str
    role: Role
    plant_id: str | None
    has_signing_secret: bool
    created_at: dt.datetime
    created_by: str


class UserPage(Page[UserRead]):
    """A page of users."""


class TokenCreate(InputModel):
    """Request to mint a bearer token; ``plant`` tokens must name their plant.

    A token belongs to a user. Without ``username`` a service user is created for it
    (``token-<id>``), so every token still has exactly one owner.
    """

    role: Role
    plant_id: Identifier | None = None
    name: Label = Field("", max_length=200, description="Who or what holds the token.")
    username: Username | None = Field(
        None, description="The user the token belongs to (same role and plant)."
    )

    @model_validator(mode="after")
    def _plant_binding(self) -> TokenCreate:
        _check_plant_binding(self.role, self.plant_id, "token")
        return self


class TokenRead(WireModel):
    """A token as listed: never the secret, only metadata."""

    id: int
    user_id: int
    role: Role
    plant_id: str | None
    name: str
    prefix: str = Field(description="First characters of the secret, to recognise it.")
    created_at: dt.datetime
    created_by: str
    revoked_at: dt.datetime | None = None


class TokenCreated(TokenRead):
    """A freshly minted token; ``token`` is shown exactly once."""

    token: str


class TokenPage(Page[TokenRead]):
    """A page of tokens."""


class Principal(WireModel):
    """The caller as the hub sees it."""

    token_id: int
    user_id: int
    username: str
    printed_name: str
    role: Role
    plant_id: str | None = None
    name: str = ""
