"""Wire models of hub authentication: roles, tokens and the calling principal."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import Field, model_validator

from federation.schemas.common import Identifier, InputModel, Label, Page, WireModel


class Role(StrEnum):
    """What a token may do on the hub."""

    ADMIN = "admin"
    DATA_SCIENTIST = "data_scientist"
    PLANT = "plant"
    EXECUTIVE = "executive"


class TokenCreate(InputModel):
    """Request to mint a bearer token; ``plant`` tokens must name their plant."""

    role: Role
    plant_id: Identifier | None = None
    name: Label = Field("", max_length=200, description="Who or what holds the token.")

    @model_validator(mode="after")
    def _plant_binding(self) -> TokenCreate:
        if self.role == Role.PLANT and not self.plant_id:
            raise ValueError("a plant token must be bound to a plant (plant_id)")
        if self.role != Role.PLANT and self.plant_id:
            raise ValueError("only plant tokens are bound to a plant")
        return self


class TokenRead(WireModel):
    """A token as listed: never the secret, only metadata."""

    id: int
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
    role: Role
    plant_id: str | None = None
    name: str = ""
