"""Pydantic shapes of the monitoring API: outcomes in, chunk results and alerts out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    model_validator,
)

UnitId = Annotated[str, Field(min_length=1, max_length=128, strict=True)] | StrictInt


class FailureRecord(BaseModel):
    """A maintenance record: ``unit`` failed at cycle ``failed_at_cycle``.

    It labels every earlier prediction of the unit with its true remaining useful life.
    """

    model_config = ConfigDict(extra="forbid")

    unit: UnitId
    failed_at_cycle: Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
    failed_at: datetime | None = Field(
        default=None, description="When it failed (UTC); defaults to when the record arrived."
    )
    baseline: str | None = Field(
        default=None, max_length=64, description="Which baseline's units; any regressor's if unset."
    )

    def unit_id(self) -> str:
        """Return the unit id as the log stores it."""
        return str(self.unit)


class QaVerdict(BaseModel):
    """A QA verdict on one prediction: the true label (0/1 for a classifier, a number else)."""

    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(min_length=1, max_length=32)
    label: StrictBool | StrictInt | Annotated[float, Field(allow_inf_nan=False, strict=True)]


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "failure" if "unit" in value or "failed_at_cycle" in value else "qa"
    if isinstance(value, FailureRecord):
        return "failure"
    if isinstance(value, QaVerdict):
        return "qa"
    return None


OutcomeIn = Annotated[
    Annotated[FailureRecord, Tag("failure")] | Annotated[QaVerdict, Tag("qa")],
    Discriminator(_kind),
]


class OutcomeBatch(BaseModel):
    """``POST /v1/outcomes`` body: one outcome, or ``{"outcomes": [...]}`` (all or nothing)."""

    model_config = ConfigDict(extra="forbid")

    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="before")
    @classmethod
    def _single(cls, data: Any) -> Any:
        if isinstance(data, dict) and "outcomes" not in data:
            return {"outcomes": [data]}
        return data


class OutcomeRead(BaseModel):
    """A stored outcome."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    baseline: str
    prediction_id: str | None
    unit: str | None
    failed_at_cycle: float | None
    failed_at: datetime | None
    label: float | None
    created_at: datetime


class OutcomeResult(BaseModel):
    """Answer to ``POST /v1/outcomes``."""

    created: int
    outcomes: list[OutcomeRead]


class MetricRead(BaseModel):
    """One metric of a chunk: the estimate with its bounds beside the realized value."""

    metric: str
    estimated: float | None
    lower: float | None
    upper: float | None
    realized: float | None
    n_labels: int
    unreliable: list[str] = Field(
        default_factory=list,
        description="Integrity or multivariate-drift rules this chunk breached: its inputs "
        "left what the estimator learned on, so the estimate is not to be trusted.",
    )


class ChunkRead(BaseModel):
    """One monitored chunk."""

    model_config = ConfigDict(from_attributes=True)

    baseline: str
    model_name: str
    model_version: str
    chunk: int
    start: datetime
    end: datetime
    n_rows: int
    metric: str | None
    estimated: float | None
    lower: float | None
    upper: float | None
    realized: float | None
    n_labels: int
    performance: list[MetricRead]
    multivariate_drift: float | None
    top_drift: list[tuple[str, float]] = Field(
        description="Most drifted features: (name, score / alert threshold), highest first."
    )
    integrity: dict[str, float]
    latency_ms: dict[str, float]


class AlertRead(BaseModel):
    """One monitoring alert: what moved, by how much, since when, top drifted features."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    baseline: str
    model_version: str
    key: str
    kind: str
    status: str
    since: datetime | None
    since_chunk: int
    raised_chunk: int
    cleared_chunk: int | None
    value: float
    worst_value: float
    threshold: float
    reference_mean: float
    reference_std: float
    sigmas: float | None
    top_features: list[tuple[str, float]]
    description: str
    created_at: datetime
    cleared_at: datetime | None
