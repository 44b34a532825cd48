"""Wire types of federated campaigns: what the hub is asked to train, and what came out.

A campaign fine-tunes a registered baseline version on several plants with Flower; the hub
runs it on the SuperLink, copies each finished round here, and on success registers the
global model (and each plant's personalized copy) as new registry versions.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import Field, model_validator

from federation.schemas.common import MAX_INT32, DbId, Identifier, InputModel, Page, Slug, WireModel
from federation.schemas.federated_run import Dropout, Rejection, RoundRecord

#: Bounds of a campaign's size: kept small enough that a mistyped number cannot occupy
#: every plant for days.
MAX_ROUNDS = 100
MAX_LOCAL_EPOCHS = 50
MAX_PLANTS = 64


class CampaignStrategy(StrEnum):
    """Aggregation strategies a campaign may use (``federation.strategies``)."""

    FEDAVG = "fedavg"
    FEDPROX = "fedprox"
    FEDTRIMMEDAVG = "fedtrimmedavg"
    FEDMEDIAN = "fedmedian"
    FEDAVGM = "fedavgm"
    FEDADAM = "fedadam"


class CampaignStatus(StrEnum):
    """Where a campaign is; ``succeeded``, ``failed`` and ``cancelled`` are final."""

    QUEUED = "queued"
    RUNNING = "running"
    REGISTERING = "registering"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """True once nothing about the campaign changes any more."""
        return self in (CampaignStatus.SUCCEEDED, CampaignStatus.FAILED, CampaignStatus.CANCELLED)


class CampaignFailureCode(StrEnum):
    """Why a campaign failed (the Flower run's codes plus the hub's own)."""

    NOT_ENOUGH_PARTICIPANTS = "not_enough_participants"
    NO_VALID_UPDATES = "no_valid_updates"
    STOPPED = "stopped"
    #: The Flower run is gone: its ServerApp died, or the SuperLink restarted and forgot it.
    RUN_LOST = "run_lost"
    TIMEOUT = "timeout"
    SUPERLINK_UNREACHABLE = "superlink_unreachable"
    EXPORT_FAILED = "export_failed"
    INTERNAL = "internal"


class PrivacyOptions(InputModel):
    """Client-side differential privacy: each plant clips its update, the server adds noise."""

    clipping_norm: float = Field(gt=0, le=1e6, description="L2 bound of a plant's update.")
    noise_multiplier: float = Field(
        ge=0, le=100, description="Gaussian noise std as a multiple of the clipping norm."
    )


class CampaignCreate(InputModel):
    """Start a federated fine-tuning campaign of ``model`` from ``parent_version_id``."""

    model: Slug = Field(description="Baseline model name (e.g. cmapss-fd001).")
    parent_version_id: DbId = Field(description="Registry version the campaign starts from.")
    recipe_id: DbId = Field(description="Published recipe version (lr, batch size, knobs).")
    plants: list[Identifier] = Field(min_length=1, max_length=MAX_PLANTS)
    strategy: CampaignStrategy
    rounds: int = Field(ge=1, le=MAX_ROUNDS)
    local_epochs: int = Field(ge=1, le=MAX_LOCAL_EPOCHS)
    min_participants: int = Field(ge=1, le=MAX_PLANTS)
    personalize_epochs: int = Field(
        0,
        ge=0,
        le=MAX_LOCAL_EPOCHS,
        description="Local fine-tuning epochs per plant after the global rounds (0: none).",
    )
    privacy: PrivacyOptions | None = None
    round_timeout_seconds: float = Field(
        300.0, ge=5, le=86_400, description="How long a round waits for the plants' replies."
    )
    max_samples_per_plant: int = Field(
        0,
        ge=0,
        le=MAX_INT32,
        description="Cap on each plant's training windows per round (0: all).",
    )
    max_units_per_plant: int = Field(
        0,
        ge=0,
        le=MAX_INT32,
        description="Read only each plant's first N run-to-failure units (0: all).",
    )

    @model_validator(mode="after")
    def _check_participation(self) -> CampaignCreate:
        if len(set(self.plants)) != len(self.plants):
            raise ValueError("plants lists the same plant twice")
        if self.min_participants > len(self.plants):
            raise ValueError(
                f"min_participants ({self.min_participants}) exceeds the number of plants "
                f"({len(self.plants)})"
            )
        if self.privacy is not None and self.strategy in (
            CampaignStrategy.FEDAVGM,
            CampaignStrategy.FEDADAM,
        ):
            # federation.strategies.SERVER_OPTIMIZERS says why; refuse before anything runs.
            raise ValueError(
                f"privacy (client-side DP) cannot be combined with {self.strategy.value}: the "
                "server optimizer's state is built from noise-free averages"
            )
        return self


class CampaignRead(WireModel):
    """A campaign, its progress and what it produced."""

    id: int
    model: str
    parent_version_id: int
    recipe_id: int
    plants: list[str]
    strategy: CampaignStrategy
    rounds: int
    local_epochs: int
    min_participants: int
    personalize_epochs: int
    privacy: PrivacyOptions | None
    round_timeout_seconds: float
    max_samples_per_plant: int
    max_units_per_plant: int
    status: CampaignStatus
    failure_code: CampaignFailureCode | None = None
    failure_detail: str = ""
    flower_run_id: str | None = Field(None, description="The SuperLink's run id (uint64).")
    rounds_completed: int = 0
    round_records: list[RoundRecord] = Field(
        default_factory=list, description="Per-round metrics, participants and bytes."
    )
    rejections: list[Rejection] = Field(default_factory=list)
    dropouts: list[Dropout] = Field(default_factory=list)
    participants: list[str] = Field(default_factory=list)
    samples_per_plant: dict[str, int] = Field(default_factory=dict)
    version_id: int | None = Field(None, description="The registered global model version.")
    personalized_version_ids: dict[str, int] = Field(
        default_factory=dict, description="Plant id -> its registered personalized version."
    )
    created_at: dt.datetime
    created_by: str
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


class CampaignPage(Page[CampaignRead]):
    """One page of campaigns, newest last."""
