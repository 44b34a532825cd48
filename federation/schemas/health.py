"""Wire models of the hub's health endpoints."""

from __future__ import annotations

from federation.schemas.common import WireModel


class Health(WireModel):
    """Liveness: the process answers."""

    status: str


class Readiness(WireModel):
    """Readiness: the database answers and its schema is at the migrations' head."""

    status: str
    database: bool
    schema_revision: str | None
    head_revision: str | None
