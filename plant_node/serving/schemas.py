"""Pydantic shapes of the serving API (predict, predictions, feedback)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from plant_node.config import RolloutMode


class PredictRequest(BaseModel):
    """One record (``record``) or a batch (``records``) for one baseline.

    For windowed baselines (C-MAPSS) the records are cycles; cycles of several engines may be
    sent together, told apart by their ``unit`` field, and each engine gets one prediction.
    """

    model_config = ConfigDict(extra="forbid")

    baseline: str = Field(min_length=1, max_length=64)
    record: dict[str, Any] | None = None
    records: list[dict[str, Any]] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.record is None) == (self.records is None):
            raise ValueError("send exactly one of 'record' or 'records'")
        return self

    def all_records(self) -> list[dict[str, Any]]:
        """Return the records as a list, whichever field carried them."""
        return [self.record] if self.record is not None else list(self.records or [])


#: Most rows one ``POST /v1/predict/batch`` takes; more are answered 413 (split the batch).
BATCH_MAX_ROWS = 1024


class BatchPredictRequest(BaseModel):
    """Many records of one baseline scored in one model call (``POST /v1/predict/batch``).

    All or nothing: one bad row rejects the batch (422 naming its ``row_indices``). The row
    count is checked by the flow, not here, so too many rows read 413 rather than 422.
    """

    model_config = ConfigDict(extra="forbid")

    baseline: str = Field(min_length=1, max_length=64)
    records: list[dict[str, Any]] = Field(min_length=1)


class PredictionRead(BaseModel):
    """One prediction as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    prediction_id: str
    batch_id: str
    baseline: str
    score: float
    label: int | None = None
    model_name: str
    model_version: str
    served_by: Literal["current", "previous", "fallback"]
    fallback: bool
    role: str = "champion"
    latency_ms: float
    explanation: Literal["ready", "pending", "off", "unavailable"]
    attributions: dict[str, Any] | None = None
    created_at: datetime


class PredictionDetail(PredictionRead):
    """A logged prediction with what went in (``GET /v1/predictions/{id}``)."""

    inputs: dict[str, Any]
    features: list[Any] | None = None
    outputs: dict[str, Any]


class PredictResponse(BaseModel):
    """Answer to ``POST /v1/predict``."""

    batch_id: str
    baseline: str
    model_version: str
    fallback: bool
    predictions: list[PredictionRead]


class FeedbackCreate(BaseModel):
    """The floor's one-click verdict on a prediction, optionally with the true outcome."""

    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(min_length=1, max_length=32)
    verdict: Literal["wrong", "right"]
    true_label: str | None = Field(default=None, max_length=64)
    failure_type: str | None = Field(default=None, max_length=64)
    operator: str | None = Field(default=None, max_length=128)
    comment: str | None = Field(default=None, max_length=2000)


class FeedbackRead(BaseModel):
    """A stored feedback row."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    prediction_id: str
    verdict: str
    true_label: str | None
    failure_type: str | None
    operator: str | None
    comment: str | None
    created_at: datetime


class RolloutStart(BaseModel):
    """Stage a cached version as challenger (shadow, canary) or promote it (full)."""

    model_config = ConfigDict(extra="forbid")

    baseline: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=1, max_length=64)
    mode: RolloutMode | None = None
