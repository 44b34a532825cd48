"""Data sharing, retention and cost policies: plain figures other domains read."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from policies.base import Frozen, PolicyBase, PolicyKind


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


class RecordClass(StrEnum):
    """Classes of records a retention policy governs."""

    PREDICTIONS = "predictions"
    OUTCOMES = "outcomes"
    EXPLANATIONS = "explanations"
    EVENTS = "events"
    OUTBOX = "outbox"
    MONITORING_CHUNKS = "monitoring_chunks"
    METRICS_REPORTS = "metrics_reports"
    ARTIFACTS = "artifacts"
    MODEL_VERSIONS = "model_versions"
    DECISIONS = "decisions"
    SIGNATURES = "signatures"
    AUDIT = "audit"
    IDEMPOTENCY_KEYS = "idempotency_keys"


#: Records an auditor relies on (21 CFR 11.10(c)): kept at least this long, never anonymized.
REGULATED = frozenset({RecordClass.AUDIT, RecordClass.SIGNATURES, RecordClass.DECISIONS})
REGULATED_MIN_DAYS = 365


class RetentionRule(Frozen):
    """How long one record class is kept.

    Parameters
    ----------
    record_class
        The class.
    keep_days
        Days to keep (``None``: forever).
    action
        What happens after: ``delete`` or ``anonymize``.
    """

    record_class: RecordClass
    keep_days: int | None = Field(None, ge=1, le=100 * 366)
    action: Literal["delete", "anonymize"] = "delete"

    @model_validator(mode="after")
    def _regulated(self) -> RetentionRule:
        if self.record_class in REGULATED:
            if self.keep_days is not None and self.keep_days < REGULATED_MIN_DAYS:
                raise ValueError(
                    f"{self.record_class.value} are kept at least {REGULATED_MIN_DAYS} days"
                )
            if self.action != "delete":
                raise ValueError(f"{self.record_class.value} are never anonymized")
        return self


class RetentionPolicy(PolicyBase):
    """Retention per record class; classes it does not name are kept forever."""

    kind: Literal[PolicyKind.RETENTION] = PolicyKind.RETENTION
    rules: list[RetentionRule] = Field(min_length=1, max_length=len(RecordClass))

    @field_validator("rules")
    @classmethod
    def _unique(cls, value: list[RetentionRule]) -> list[RetentionRule]:
        classes = [r.record_class for r in value]
        if len(set(classes)) != len(classes):
            raise ValueError("each record class appears once")
        return value

    def keep_days(self, record_class: RecordClass | str) -> int | None:
        """Return the days a class is kept (``None``: forever).

        Parameters
        ----------
        record_class
            The class.

        Returns
        -------
        int | None
            Its ``keep_days``.
        """
        wanted = RecordClass(record_class)
        return next((r.keep_days for r in self.rules if r.record_class is wanted), None)


class CostPolicy(PolicyBase):
    """What failures, false alarms and interventions cost at a plant (for business impact).

    Parameters
    ----------
    currency
        ISO 4217 code.
    cost_per_unplanned_failure_hour
        Cost of one hour of unplanned downtime.
    hours_per_failure
        Hours of unplanned downtime one missed failure causes.
    cost_per_false_alarm
        Cost of one false alarm (an inspection for nothing).
    cost_per_planned_intervention
        Cost of the planned maintenance a caught failure needs instead.
    """

    kind: Literal[PolicyKind.COST] = PolicyKind.COST
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    cost_per_unplanned_failure_hour: float = Field(ge=0)
    hours_per_failure: float = Field(gt=0, le=10_000)
    cost_per_false_alarm: float = Field(ge=0)
    cost_per_planned_intervention: float = Field(ge=0)

    @property
    def cost_per_failure(self) -> float:
        """Cost of one unplanned failure (hourly cost x hours per failure)."""
        return self.cost_per_unplanned_failure_hour * self.hours_per_failure

    def impact(self, *, caught: int, missed: int, false_alarms: int) -> dict[str, float]:
        """Return the money the counts stand for, in :attr:`currency`.

        A caught failure avoids one unplanned failure but costs a planned intervention; a
        missed one costs a failure; a false alarm costs its own price.

        Parameters
        ----------
        caught
            Failures caught in time.
        missed
            Failures missed.
        false_alarms
            False alarms.

        Returns
        -------
        dict[str, float]
            ``downtime_hours_avoided``, ``cost_avoided``, ``cost_of_misses``,
            ``cost_of_false_alarms`` and ``net`` (avoided minus false alarms).
        """
        avoided = caught * (self.cost_per_failure - self.cost_per_planned_intervention)
        alarms = false_alarms * self.cost_per_false_alarm
        return {
            "downtime_hours_avoided": caught * self.hours_per_failure,
            "cost_avoided": avoided,
            "cost_of_misses": missed * self.cost_per_failure,
            "cost_of_false_alarms": alarms,
            "net": avoided - alarms,
        }
