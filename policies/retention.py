"""Retention policies: how long each class of record is kept, and what happens after."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from policies.base import Frozen, PolicyBase, PolicyKind


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
