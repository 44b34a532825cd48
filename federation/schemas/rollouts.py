"""Wire models of fleet operations: rollouts, rollbacks, the model inventory and webhooks."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

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

# ---------------------------------------------------------------- rollouts


class RolloutStatus(StrEnum):
    """Where a rollout is."""

    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"
    ABORTED = "aborted"
    COMPLETED = "completed"

    @property
    def active(self) -> bool:
        """Whether the rollout still holds its plants (a halted one does until aborted)."""
        return self in (RolloutStatus.RUNNING, RolloutStatus.PAUSED, RolloutStatus.HALTED)


class PlantStage(StrEnum):
    """Where one plant of a rollout is."""

    PENDING = "pending"
    SHADOW = "shadow"
    CANARY = "canary"
    PROMOTING = "promoting"
    CHAMPION = "champion"
    DONE = "done"
    HALTED = "halted"
    ROLLED_BACK = "rolled_back"
    SKIPPED = "skipped"

    @property
    def settled(self) -> bool:
        """Whether the plant has finished its wave (successfully or not)."""
        return self in (PlantStage.CHAMPION, PlantStage.DONE)


class RolloutCreate(InputModel):
    """Start a rollout of one version under a rollout plan (policy ``id@version``)."""

    plan: Label = Field(min_length=3, max_length=140, description="Rollout plan, id@version.")
    version_id: DbId
    gate: Label | None = Field(
        None,
        min_length=3,
        max_length=140,
        description="Promotion gate (id@version) the champion step goes through; the "
        "governance flow decides it (approvals, if the gate wants them).",
    )
    plants: list[Identifier] | None = Field(
        None, min_length=1, max_length=1000, description="The fleet; default: every plant."
    )
    reason: Text = Field("", max_length=2000)


class RolloutPlantRead(WireModel):
    """One plant of a rollout."""

    plant_id: str
    wave: int
    wave_name: str
    stage: PlantStage
    stage_started_at: dt.datetime | None
    previous_version_id: int | None
    promotion_id: int | None
    detail: str


class RolloutStepRead(WireModel):
    """One recorded transition or decision of a rollout."""

    seq: int
    at: dt.datetime
    plant_id: str | None
    action: str
    from_stage: str | None
    to_stage: str | None
    reason: str


class RolloutRead(WireModel):
    """A rollout with its plants (and, on the detail view, its steps)."""

    id: int
    model: str
    version_id: int
    version: str
    plan: str
    gate: str | None
    status: RolloutStatus
    current_wave: int
    waves: list[str]
    failure_handling: str
    detail: str
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None
    plants: list[RolloutPlantRead]
    steps: list[RolloutStepRead] = Field(default_factory=list)


class RolloutPage(Page[RolloutRead]):
    """A page of rollouts, newest first."""


class RolloutAction(InputModel):
    """Why a rollout is paused, resumed or aborted (recorded on the audit trail)."""

    reason: Text = Field("", max_length=2000)


# ---------------------------------------------------------------- rollbacks


class RollbackCreate(InputModel):
    """Point champion back at one plant, or the whole fleet, in one call."""

    model: Slug
    plant: Identifier | None = None
    fleet: bool = False
    to: DbId | None = Field(
        None, description="Version id to return to; default: the previous champion."
    )
    reason: Text = Field("", max_length=2000)

    @model_validator(mode="after")
    def _one_target(self) -> RollbackCreate:
        if (self.plant is None) == (not self.fleet):
            raise ValueError("name either plant or fleet: true")
        return self


class RollbackRead(WireModel):
    """One plant's rollback."""

    id: int
    model: str
    plant_id: str
    from_version_id: int | None
    to_version_id: int
    to_version: str
    rollout_id: int | None
    reason: str
    created_by: str
    created_at: dt.datetime
    confirmed_at: dt.datetime | None = Field(
        None,
        description="When the plant's node reported serving the version (event "
        "rollout.serving); null until then.",
    )


class RollbackResult(WireModel):
    """Every plant a rollback call changed."""

    items: list[RollbackRead]


# ---------------------------------------------------------------- inventory


class InventoryStatus(StrEnum):
    """Status of one inventory row (the filter ``status``)."""

    OK = "ok"
    STALE = "stale"
    DIVERGED = "diverged"
    ROLLOUT = "rollout"


class InventoryRow(WireModel):
    """Which model runs where, trained when, on what data, validated when, since when."""

    plant_id: str
    model: str
    version_id: int
    version: str
    serving_since: dt.datetime
    previous_version: str | None
    trained_at: dt.datetime
    training_data_fingerprint: str
    parent_version: str | None
    lineage: list[str] = Field(description="Version labels from the root baseline to this one.")
    recipe_id: int | None
    last_validated_at: dt.datetime | None
    last_validation: str | None = Field(description="The decision summary that admitted it.")
    estimated: dict[str, float] = Field(default_factory=dict)
    realized: dict[str, float] = Field(default_factory=dict)
    last_report_at: dt.datetime | None
    stale: bool
    rollout_id: int | None
    rollout_stage: str | None
    reported_version: str | None = Field(
        None, description="The version the node last reported serving (rollout.serving)."
    )
    precision: str | None = Field(None, description="IR precision the node answers with.")
    node_version: str | None = Field(None, description="The node's software version.")
    drift: dict[str, float] = Field(
        default_factory=dict, description="Largest latest per-feature drift (drifted_chunks, psi)."
    )
    last_alert: str | None = Field(None, description="Kind of the plant's newest alert event.")
    last_alert_at: dt.datetime | None = None
    status: InventoryStatus = Field(
        InventoryStatus.OK,
        description="stale (node silent too long), diverged (the node reports another version "
        "than the hub assigns), rollout (a rollout holds it) or ok.",
    )


class InventoryList(WireModel):
    """The inventory, one row per plant x model that has a champion."""

    items: list[InventoryRow]


# ---------------------------------------------------------------- webhooks


class WebhookEvent(StrEnum):
    """Event types a subscription can ask for (``<subject>.<what happened>``)."""

    VERSION_REGISTERED = "version.registered"
    PROMOTION_REQUESTED = "promotion.requested"
    ROLLOUT_STARTED = "rollout.started"
    ROLLOUT_WAVE_ADVANCED = "rollout.wave_advanced"
    ROLLOUT_ABORTED = "rollout.aborted"
    ROLLOUT_COMPLETED = "rollout.completed"
    ROLLBACK = "rollback.completed"
    PROMOTION_DECIDED = "promotion.decided"
    ALERT_RECEIVED = "alert.received"
    #: A monitoring alert (a node's control-chart rule) opened / closed, from metrics reports.
    ALERT_RAISED = "alert.raised"
    ALERT_CLEARED = "alert.cleared"
    #: A federated campaign reached succeeded, failed or cancelled.
    CAMPAIGN_FINISHED = "campaign.finished"
    #: A plant went silent beyond ``node_stale_seconds`` (once per episode) / spoke again.
    NODE_STALE = "node.stale"
    NODE_RECOVERED = "node.recovered"


class WebhookCreate(InputModel):
    """Subscribe an http(s) URL to event types."""

    url: Label = Field(min_length=8, max_length=2000)
    events: list[WebhookEvent] = Field(min_length=1, max_length=len(WebhookEvent))
    description: Text = Field("", max_length=500)


class WebhookRead(WireModel):
    """A subscription (its secret is shown only when it is created)."""

    id: int
    url: str
    events: list[WebhookEvent]
    description: str
    active: bool
    created_by: str
    created_at: dt.datetime
    pending: int = 0
    delivered: int = 0
    failed: int = 0


class WebhookCreated(WebhookRead):
    """Answer to a subscription: the signing secret (``whsec_...``), shown this once."""

    secret: str


class WebhookPage(Page[WebhookRead]):
    """A page of subscriptions."""


class WebhookRotate(InputModel):
    """Rotate a subscription's secret; the old one keeps signing for ``grace_seconds``."""

    grace_seconds: float = Field(
        86400.0,
        ge=0,
        le=30 * 86400,
        description="How long deliveries also carry a signature with the previous secret.",
    )


class WebhookAttemptRead(WireModel):
    """One attempt of a delivery."""

    at: dt.datetime
    status_code: int | None
    error: str
    latency_ms: float


class WebhookDeliveryRead(WireModel):
    """One event for one subscription, with its attempt log."""

    id: int
    message_id: str = Field(description="The webhook-id header (the same on every attempt).")
    event_type: str
    status: str = Field(description="pending, delivered or failed.")
    attempts: int
    next_attempt_at: dt.datetime
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    log: list[WebhookAttemptRead] = Field(default_factory=list)


class WebhookDeliveryPage(Page[WebhookDeliveryRead]):
    """A page of deliveries."""


class WebhookPayload(WireModel):
    """The body of every delivery (Standard Webhooks: ``type``, ``timestamp``, ``data``)."""

    type: WebhookEvent
    timestamp: dt.datetime
    data: dict[str, Any]
