"""Wire models of the hub's audit trail: chained entries and their pages."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from federation.schemas.common import Page, WireModel


class AuditEntryRead(WireModel):
    """One entry of the hash chain, with everything needed to recompute its hash."""

    seq: int = Field(description="Position in the chain, from 1 without gaps.")
    at: str = Field(description="UTC time, ISO 8601 with microseconds (as hashed).")
    actor: str
    action: str = Field(description="Dotted action, e.g. alias.set or token.revoke.")
    subject: str = Field(description="What was acted on, e.g. plant/fd001/turbofan/champion.")
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: str | None = None
    flags: list[str] = Field(default_factory=list, description="e.g. break_glass.")
    prev_hash: str
    entry_hash: str = Field(description="sha256(prev_hash + canonical JSON of the entry).")


class AuditPage(Page[AuditEntryRead]):
    """A page of audit entries in chain order."""
