"""Wire models of retraining: a plant's request with its evidence, and the hub's decision.

The plant node's retraining flow queues a :class:`RetrainingRequestCreate` on its own outbox
stream (``retraining``, kind ``retraining.requested``); the outbox delivers it to
``POST /api/v1/plants/{plant_id}/retraining-requests``. The request ``id`` is the outbox
idempotency key, so a redelivery returns the stored request (200) instead of a second one.
The hub decides by the plant's retraining policy and answers with a
:class:`RetrainingRequestRead` whose ``decision`` is one of :class:`RetrainingDecision`.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from federation.schemas.audit import AuditEntryRead
from federation.schemas.common import (
    DbId,
    Identifier,
    InputModel,
    Label,
    Page,
    Slug,
    Text,
    WireModel,
)
from federation.schemas.governance import PromotionRead
from federation.schemas.registry import VersionRead

MAX_EVIDENCE_KEYS = 64
MAX_REASONS = 20

EvidencePath = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.]{0,99}$")]


class RetrainingCondition(StrEnum):
    """Which trigger condition fired (the ``kind`` of a ``policies.retraining`` trigger)."""

    DRIFT_SUSTAINED = "drift_sustained"
    ESTIMATED_METRIC_WORSE = "estimated_metric_worse"
    NEW_FAILURE_TYPE = "new_failure_type"
    OPERATOR_FLAGS = "operator_flags"
    PRODUCT_MIX_CHANGE = "product_mix_change"
    SCHEDULE = "schedule"


class RetrainingDecision(StrEnum):
    """How the hub answered a retraining request."""

    PENDING = "pending"  # received, not decided yet
    LOCAL_FINE_TUNE = "local_fine_tune"  # a fine-tune at the requesting plant
    FEDERATED = "federated"  # a campaign across the plants showing the same change
    REFUSED = "refused"  # cooldown, budget, too little evidence, ... (see ``reasons``)


class CandidateOutcome(StrEnum):
    """What became of the candidate a retraining produced."""

    TRAINING = "training"
    TRAINING_FAILED = "training_failed"
    VALIDATION_FAILED = "validation_failed"  # worse than the champion: recorded, not promoted
    AWAITING_APPROVAL = "awaiting_approval"  # gate passed, people must sign
    PROMOTED = "promoted"  # gate passed and promoted (automatically or after approval)
    REFUSED = "refused"  # the promotion gate refused it


class RetrainingRequestCreate(InputModel):
    """One fired trigger, sent by a plant node with the evidence it fired on.

    ``evidence`` holds the evidence paths the trigger's gate reads (e.g.
    ``drift.sustained_chunks``, ``estimated.mae``, ``reference.mae``, ``labels.new``) with
    their values, so the hub can re-check the decision without trusting the node's verdict.
    """

    id: Identifier = Field(description="Set by the plant; the outbox idempotency key.")
    model: Slug = Field(description="The baseline model name the plant runs.")
    version_id: DbId = Field(description="The registry version serving when it fired.")
    policy: Label = Field(min_length=1, max_length=200, description="Retraining policy id@version.")
    trigger: Slug = Field(description="The trigger's name in that policy.")
    condition: RetrainingCondition
    fired_at: dt.datetime
    evidence: dict[EvidencePath, float] = Field(default_factory=dict, max_length=MAX_EVIDENCE_KEYS)
    labelled_window: int = Field(0, ge=0, le=10_000_000, description="Labelled rows available.")
    note: Text = Field("", max_length=2000)


class RetrainingRequestRead(RetrainingRequestCreate):
    """A retraining request as the hub stored and decided it."""

    plant_id: str
    received_at: dt.datetime
    decision: RetrainingDecision
    reasons: list[Text] = Field(default_factory=list, max_length=MAX_REASONS)
    campaign_id: int | None = None
    candidate_version_id: int | None = None
    candidate_outcome: CandidateOutcome | None = None
    promotion_id: int | None = None


class RetrainingRequestPage(Page[RetrainingRequestRead]):
    """A page of retraining requests, newest first."""


class RetrainingChain(WireModel):
    """Why a model changed, in one answer: request -> decision -> candidate -> promotion.

    ``audit`` holds the audit entries of the request's decision and, when there is one, of
    its candidate's promotion, oldest first (each verifiable against the chain).
    """

    request: RetrainingRequestRead
    audit: list[AuditEntryRead] = Field(default_factory=list)
    candidate: VersionRead | None = None
    promotion: PromotionRead | None = None
