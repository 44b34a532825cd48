"""Node roles, the principal a key stands for, and the key shapes the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class NodeRole(StrEnum):
    """What a node key may do.

    ``line``: the production line's clients (predict, read predictions, feedback, outcomes,
    and the read-only monitoring views). ``engineer``: a plant engineer (everything ``line``
    may, plus rollout and model reload). ``monitor``: a metrics scraper or dashboard
    (``/metrics``, alerts, chunks, rollout status; no prediction inputs, no writes).
    The hub has no role: it never calls a node (nodes pull assignments and push reports).
    """

    LINE = "line"
    ENGINEER = "engineer"
    MONITOR = "monitor"


@dataclass(frozen=True)
class NodePrincipal:
    """Who a request comes from: the key's id, name and role."""

    key_id: int
    name: str
    role: NodeRole

    @property
    def actor(self) -> str:
        """How the caller is recorded in events (``engineer:alice``)."""
        return f"{self.role.value}:{self.name}"


# A key is 32 random bytes (256 bits) in URL-safe base64 behind a recognisable prefix.
KEY_PREFIX = "mwn_"
MIN_KEY_LENGTH = 32


class BootstrapKey(BaseModel):
    """A key given to the node in its settings, hashed into the database on start."""

    model_config = ConfigDict(extra="forbid")

    role: NodeRole
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")
    key: SecretStr = Field(min_length=MIN_KEY_LENGTH, max_length=200)


class NodeKeyRead(BaseModel):
    """A key as listed: never the secret, only its first characters."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: NodeRole
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class NodeKeyCreated(NodeKeyRead):
    """A key just created: the only time the secret is shown."""

    key: str
