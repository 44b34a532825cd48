"""The results file a federated run writes and the hub reads (``results-path`` in run config).

The ServerApp rewrites the file atomically after every round, so a reader always sees a
complete document: ``status`` is ``running`` until the run ends in ``succeeded`` or
``failed`` (with ``failure``).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class RunOutcome(StrEnum):
    """Where a federated run is."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class FailureCode(StrEnum):
    """Why a federated run failed."""

    NOT_ENOUGH_PARTICIPANTS = "not_enough_participants"
    NO_VALID_UPDATES = "no_valid_updates"
    STOPPED = "stopped"
    #: The ServerApp died without writing its outcome (killed, or its SuperLink went down).
    RUN_LOST = "run_lost"
    INTERNAL = "internal"


class RejectReason(StrEnum):
    """Why the server refused a plant's update."""

    NON_FINITE = "non_finite"
    NORM_EXCEEDED = "norm_exceeded"
    MALFORMED = "malformed"


class Rejection(BaseModel):
    """One update the server refused."""

    round: int
    plant_id: str
    node_id: int
    reason: RejectReason
    update_norm: float | None = None
    bound: float | None = None


class Dropout(BaseModel):
    """A plant that was asked to work in a round and did not answer in time (or errored)."""

    round: int
    stage: str  # "train" or "evaluate"
    plant_id: str
    node_id: int
    reason: str


class PlantMetrics(BaseModel):
    """One plant's numbers for one stage of one round."""

    num_examples: int
    metrics: dict[str, float]


class StageRecord(BaseModel):
    """Per-plant and aggregated metrics of one stage (train or evaluate)."""

    per_plant: dict[str, PlantMetrics] = Field(default_factory=dict)
    aggregated: dict[str, float] = Field(default_factory=dict)


class RoundRecord(BaseModel):
    """Everything recorded about one round."""

    round: int
    sampled: list[str] = Field(default_factory=list)
    participants: list[str] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list)
    dropped: list[str] = Field(default_factory=list)
    train: StageRecord = Field(default_factory=StageRecord)
    evaluate: StageRecord = Field(default_factory=StageRecord)
    bytes_down_per_plant: dict[str, int] = Field(default_factory=dict)
    bytes_up_per_plant: dict[str, int] = Field(default_factory=dict)
    bytes_total: int = 0
    seconds: float = 0.0


class Lineage(BaseModel):
    """Where the final global model came from."""

    campaign_id: str | None = None
    parent_version: str | None = None
    baseline: str
    strategy: str
    rounds: int
    participants: list[str]
    samples_per_plant: dict[str, int]
    run_config: dict[str, str | int | float | bool]


class ModelArtifact(BaseModel):
    """The saved global weights (numpy ``.npz``) and their lineage."""

    path: str
    sha256: str
    array_names: list[str]
    lineage: Lineage


class PersonalizedModel(BaseModel):
    """A plant's own fine-tuned copy of the final global model."""

    plant_id: str
    path: str
    sha256: str
    num_examples: int
    metrics_before: dict[str, float]
    metrics_after: dict[str, float]
    feature_state_path: str | None = Field(
        None, description="The plant's feature normalization the copy was tuned under (JSON)."
    )
    calibration: dict[str, float] | None = Field(
        None,
        description="A classifier copy's calibration fitted on the plant's validation split "
        "(calib-temperature, calib-threshold).",
    )


class Failure(BaseModel):
    """Why the run stopped early."""

    code: FailureCode
    detail: str
    round: int | None = None


class FederatedRunResult(BaseModel):
    """The document at ``results-path``."""

    status: RunOutcome = RunOutcome.RUNNING
    campaign_id: str | None = None
    baseline: str
    strategy: str
    rounds_planned: int
    rounds_completed: int = 0
    min_participants: int
    rounds: list[RoundRecord] = Field(default_factory=list)
    rejections: list[Rejection] = Field(default_factory=list)
    dropouts: list[Dropout] = Field(default_factory=list)
    failure: Failure | None = None
    model: ModelArtifact | None = None
    personalized: list[PersonalizedModel] = Field(default_factory=list)
    started_at: str
    finished_at: str | None = None
