"""Data sharing policies: what a plant's anonymized report may contain."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from policies.base import PolicyBase, PolicyKind


class DataSharingPolicy(PolicyBase):
    """What a plant's anonymized report may contain.

    Parameters
    ----------
    min_window_rows
        A report window with fewer rows is not sent at all.
    min_window_seconds
        Nor is a window shorter than this.
    suppression_threshold
        Counts (per class, failure mode, bucket) below it are suppressed (k-anonymity style).
    dp_epsilon
        Optional differential-privacy budget per report (``None``: no noise added).
    dp_delta
        Optional delta for (epsilon, delta)-DP.
    """

    kind: Literal[PolicyKind.DATA_SHARING] = PolicyKind.DATA_SHARING
    min_window_rows: int = Field(100, ge=1)
    min_window_seconds: int = Field(0, ge=0)
    suppression_threshold: int = Field(10, ge=1)
    dp_epsilon: float | None = Field(None, gt=0, le=100)
    dp_delta: float | None = Field(None, gt=0, lt=1)

    @model_validator(mode="after")
    def _delta_needs_epsilon(self) -> DataSharingPolicy:
        if self.dp_delta is not None and self.dp_epsilon is None:
            raise ValueError("dp_delta needs dp_epsilon")
        return self
