"""Wire models of governance: published policies, promotion requests, decisions, signatures."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import Field

from federation.schemas.common import DbId, Identifier, InputModel, Page, Text, WireModel
from federation.schemas.registry import AliasName

#: A policy reference, ``id@version``.
PolicyRef = str


# ---------------------------------------------------------------- policies


class PolicyRead(WireModel):
    """One published (immutable) policy document."""

    policy_id: str
    version: int
    ref: PolicyRef
    kind: str
    title: str
    document: dict[str, Any] = Field(description="The validated document, as JSON.")
    sha256: str = Field(description="sha256 of the document's canonical JSON.")
    created_at: dt.datetime
    created_by: str


class PolicyPublished(PolicyRead):
    """Answer to a publish: ``created`` is False when the same document was already stored."""

    created: bool


class PolicyPage(Page[PolicyRead]):
    """A page of policies."""


class PolicyFieldChange(WireModel):
    """One dotted field that differs between two policy documents."""

    field: str
    a: Any = None
    b: Any = None


class PolicyDiff(WireModel):
    """What changed from policy ``a`` to policy ``b``."""

    a: PolicyRef
    b: PolicyRef
    changes: list[PolicyFieldChange]


# ---------------------------------------------------------------- lifecycle


class LifecycleState(StrEnum):
    """Where a version stands at one plant."""

    CANDIDATE = "candidate"
    VALIDATED = "validated"
    APPROVED = "approved"
    SHADOW = "shadow"
    CANARY = "canary"
    CHAMPION = "champion"
    RETIRED = "retired"
    ROLLED_BACK = "rolled_back"
    REFUSED = "refused"


#: The state a version reaches when it is approved into each alias.
STATE_OF_ALIAS: dict[AliasName, LifecycleState] = {
    AliasName.SHADOW: LifecycleState.SHADOW,
    AliasName.CHALLENGER: LifecycleState.CANARY,
    AliasName.CHAMPION: LifecycleState.CHAMPION,
}


class LifecycleRead(WireModel):
    """A version's state at a plant, and the promotion that put it there."""

    plant_id: str
    version_id: int
    model: str
    state: LifecycleState
    promotion_id: int | None
    updated_at: dt.datetime
    updated_by: str


class LifecycleList(WireModel):
    """Every version with a lifecycle state at a plant."""

    items: list[LifecycleRead]


# ---------------------------------------------------------------- promotions


class PromotionStatus(StrEnum):
    """Where a promotion request is."""

    REFUSED = "refused"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    BREAK_GLASS = "break_glass"

    @property
    def final(self) -> bool:
        """Whether the request is decided."""
        return self is not PromotionStatus.PENDING_APPROVAL


class PromotionCreate(InputModel):
    """Ask to put a version into a plant's alias under a promotion-gate policy."""

    version_id: DbId
    plant_id: Identifier
    alias: AliasName = AliasName.CHAMPION
    policy: PolicyRef = Field(min_length=3, max_length=140, description="Gate policy, id@version.")
    reason: Text = Field("", max_length=2000, description="Why the requester asks for it.")


class BreakGlassCreate(InputModel):
    """Admin override: point an alias at a version without gate or approvals (flagged)."""

    version_id: DbId
    plant_id: Identifier
    alias: AliasName = AliasName.CHAMPION
    reason: Text = Field(min_length=10, max_length=2000, description="Why, for the audit trail.")


class SignatureMeaning(StrEnum):
    """What a signature means (21 CFR 11.50(a)(3))."""

    REVIEW = "review"
    APPROVAL = "approval"
    REJECTION = "rejection"
    RESPONSIBILITY = "responsibility"


#: Meanings that count towards a policy's required approvals.
APPROVING_MEANINGS = frozenset({SignatureMeaning.APPROVAL, SignatureMeaning.RESPONSIBILITY})


class SignatureCreate(InputModel):
    """Sign a promotion request: the signing secret is re-entered for every signature."""

    signing_secret: str = Field(min_length=1, max_length=1024, repr=False)
    meaning: SignatureMeaning | None = Field(
        None,
        description="approve: approval (default), review or responsibility; reject: rejection.",
    )
    comment: Text = Field("", max_length=2000)


class SignatureRead(WireModel):
    """One electronic signature, bound to the record it was applied to."""

    id: int
    promotion_id: int
    user_id: int
    username: str
    printed_name: str
    role: str
    meaning: SignatureMeaning
    signed_at: dt.datetime = Field(description="UTC date and time of signing.")
    comment: str
    binding_sha256: str = Field(
        description="sha256 over version id, artifact sha256, policy id@version, evidence sha256."
    )
    valid: bool = Field(description="Whether the binding still matches the record it signs.")


class RuleResultRead(WireModel):
    """One rule's verdict, as frozen in the decision record."""

    rule: str
    metric: str
    scope: dict[str, Any] = Field(default_factory=dict)
    observed: Any = None
    op: str
    threshold: Any = None
    verdict: str
    message: str = ""
    required: bool = True
    reference: Any = None


class DecisionRead(WireModel):
    """The gate's decision on the frozen evidence."""

    policy_ref: PolicyRef
    kind: str = "promotion_gate"
    passed: bool
    summary: str
    results: list[RuleResultRead]
    plant: str | None = None
    product_line: str | None = None
    evidence_sha256: str | None = None
    refusals: list[str] = Field(
        default_factory=list, description="Preconditions that refuse regardless of the policy."
    )


class PromotionRead(WireModel):
    """A promotion request with its frozen evidence, decision and signatures."""

    id: int
    version_id: int
    model: str
    version: str
    plant_id: str
    alias: AliasName
    policy_ref: PolicyRef | None
    status: PromotionStatus
    reason: str
    requested_by: str
    requested_by_user_id: int | None
    artifact_sha256: str | None
    evidence: dict[str, Any]
    evidence_sha256: str
    binding_sha256: str
    decision: DecisionRead | None
    approvals_required: int
    approver_roles: list[str]
    approvals: int = Field(description="Valid approving signatures so far.")
    signatures: list[SignatureRead]
    break_glass: bool
    created_at: dt.datetime
    decided_at: dt.datetime | None


class PromotionPage(Page[PromotionRead]):
    """A page of promotion requests, newest first."""


__all__ = [
    "APPROVING_MEANINGS",
    "STATE_OF_ALIAS",
    "BreakGlassCreate",
    "DecisionRead",
    "LifecycleList",
    "LifecycleRead",
    "LifecycleState",
    "PolicyDiff",
    "PolicyFieldChange",
    "PolicyPage",
    "PolicyPublished",
    "PolicyRead",
    "PolicyRef",
    "PromotionCreate",
    "PromotionPage",
    "PromotionRead",
    "PromotionStatus",
    "RuleResultRead",
    "SignatureCreate",
    "SignatureMeaning",
    "SignatureRead",
]
