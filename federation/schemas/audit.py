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


class AuditVerification(WireModel):
    """What recomputing the chain found (``GET /api/v1/audit/verify``)."""

    ok: bool
    entries: int = Field(description="Entries verified, from the first.")
    head_seq: int = Field(description="Last entry verified intact.")
    head_hash: str = Field(description="Its hash: keep it elsewhere, pass it as expect_head.")
    kind: str | None = Field(
        default=None, description="edited, deleted, inserted, reordered or truncated."
    )
    seq: int | None = Field(default=None, description="The first entry concerned.")
    problem: str | None = None
    unsealed: int = Field(
        default=0, description="Entries written but not chained yet (PostgreSQL; normally 0)."
    )
