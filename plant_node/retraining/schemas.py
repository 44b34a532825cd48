"""Pydantic shapes of the retraining API: the labelling queue, labels, line signals, firings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt


class QueueItem(BaseModel):
    """One prediction waiting for a label, with why it is ranked where it is."""

    prediction_id: str
    baseline: str
    model_version: str
    created_at: datetime
    score: float
    reason: Literal["operator_flag", "uncertainty", "unranked"]
    priority: float = Field(description="Higher first: flags 1 + 1, uncertainty 0..1, else 0.")
    uncertainty: float | None = Field(
        None,
        description="Ensemble members' standard deviation (regressors), or closeness of the "
        "calibrated probability to the decision threshold, 1 at the threshold (classifiers).",
    )


class QueuePage(BaseModel):
    """A page of the labelling queue, highest priority first."""

    items: list[QueueItem]
    total: int
    offset: int
    limit: int
    budget_per_day: int
    labelled_today: int
    budget_remaining: int


class LabelIn(BaseModel):
    """``POST /v1/labeling/{prediction_id}``: the true label (0/1 for a classifier)."""

    model_config = ConfigDict(extra="forbid")

    label: StrictBool | StrictInt | Annotated[float, Field(allow_inf_nan=False, strict=True)]


class LabelRead(BaseModel):
    """A label given through the queue."""

    model_config = ConfigDict(from_attributes=True)

    prediction_id: str
    baseline: str
    label: float
    priority: float | None
    reason: str
    created_at: datetime
    budget_remaining: int = 0


class LineSignalIn(BaseModel):
    """A change the line announces: a new recipe or product mix (``POST /v1/line-signals``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["product_mix_change"] = "product_mix_change"
    value: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")
    baseline: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")
    note: str | None = Field(None, max_length=2000)


class LineSignalRead(BaseModel):
    """A stored line signal."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    value: str
    baseline: str | None
    note: str | None
    created_at: datetime


class FiringRead(BaseModel):
    """A trigger that fired, with the evidence and the request queued for the hub."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    baseline: str
    model_name: str
    model_version: str
    policy: str
    trigger: str
    condition: str
    fired_at: datetime
    basis: str
    evidence: dict[str, Any]
    labelled_window: int
    summary: str
