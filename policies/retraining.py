"""Retraining triggers: evidence that starts a retraining, with cooldown, budget, minimum size."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from policies.base import Frozen, PolicyBase, PolicyKind
from policies.evidence import KNOWN_METRICS
from policies.refs import Slug
from policies.rules import Comparator, Gate


class _Trigger(Frozen):
    """What every trigger has, so a noisy stream cannot start a retraining storm."""

    name: Slug
    cooldown_s: int = Field(86_400, ge=0)
    daily_budget: int = Field(1, ge=1, le=1000)
    min_evidence: int = Field(200, ge=0)

    def _gate(self, metric: str, op: Comparator, threshold: float | bool, **kw: str) -> Gate:
        return Gate(
            name=self.name, metric=metric, op=op, threshold=threshold,
            samples="labels.new" if self.min_evidence else None, min_samples=self.min_evidence,
            **kw,
        )

    def gate(self) -> Gate:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def refusal(self, seconds_since_last: float | None, fired_today: int) -> str | None:
        """Return why the trigger may not fire now (cooldown, budget), or ``None``.

        Parameters
        ----------
        seconds_since_last
            Seconds since it last fired (``None``: never).
        fired_today
            How often it fired today (UTC).

        Returns
        -------
        str | None
            The reason in words, or ``None`` when it may fire.
        """
        if seconds_since_last is not None and seconds_since_last < self.cooldown_s:
            return (
                f"trigger {self.name} cooling down: fired {seconds_since_last:.0f} s ago, "
                f"cooldown {self.cooldown_s} s"
            )
        if fired_today >= self.daily_budget:
            return f"trigger {self.name} spent its daily budget ({self.daily_budget})"
        return None


class DriftSustained(_Trigger):
    """Fire when a drift alert has held for ``chunks`` consecutive chunks."""

    kind: Literal["drift_sustained"] = "drift_sustained"
    chunks: int = Field(ge=1, le=10_000)

    def gate(self) -> Gate:
        """Return the firing condition as a gate (pass = fire)."""
        return self._gate("drift.sustained_chunks", Comparator.GE, self.chunks)


class EstimatedMetricWorse(_Trigger):
    """Fire when the estimated metric is ``min_worse_pct`` % or more worse than the reference."""

    kind: Literal["estimated_metric_worse"] = "estimated_metric_worse"
    metric: str
    min_worse_pct: float = Field(gt=0, le=1000)

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in KNOWN_METRICS:
            raise ValueError(f"unknown metric {value!r}; known: {', '.join(KNOWN_METRICS)}")
        return value

    def gate(self) -> Gate:
        """Return the firing condition as a gate (pass = fire)."""
        return self._gate(
            f"estimated.{self.metric}", Comparator.GE, self.min_worse_pct,
            relative_to=f"reference.{self.metric}",
        )


class NewFailureType(_Trigger):
    """Fire when outcomes show a failure type the model was not trained on."""

    kind: Literal["new_failure_type"] = "new_failure_type"

    def gate(self) -> Gate:
        """Return the firing condition as a gate (pass = fire)."""
        return self._gate("outcomes.new_failure_types", Comparator.GE, 1)


class OperatorFlags(_Trigger):
    """Fire when operators flagged ``count`` prediction errors within ``window_s``."""

    kind: Literal["operator_flags"] = "operator_flags"
    count: int = Field(ge=1, le=100_000)
    window_s: int = Field(gt=0)

    def gate(self) -> Gate:
        """Return the firing condition as a gate (pass = fire)."""
        return self._gate("operator.flagged_errors", Comparator.GE, self.count)


class ProductMixChange(_Trigger):
    """Fire when the line signals a recipe / product-mix change."""

    kind: Literal["product_mix_change"] = "product_mix_change"

    def gate(self) -> Gate:
        """Return the firing condition as a gate (pass = fire)."""
        return self._gate("line.product_mix_changed", Comparator.EQ, True)


class Schedule(_Trigger):
    """Fire on a cron schedule (five fields, in the plant's time zone), for slow changes."""

    kind: Literal["schedule"] = "schedule"
    cron: str = Field(min_length=9, max_length=100)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"not a cron expression {value!r}: {exc}") from None
        return value

    def gate(self) -> Gate:
        """Return the firing condition as a gate (pass = fire)."""
        return self._gate("schedule.due", Comparator.EQ, True)


Trigger = Annotated[
    DriftSustained
    | EstimatedMetricWorse
    | NewFailureType
    | OperatorFlags
    | ProductMixChange
    | Schedule,
    Field(discriminator="kind"),
]


class RetrainingPolicy(PolicyBase):
    """When a plant asks for retraining, and how the hub answers.

    Parameters
    ----------
    triggers
        The conditions; any one firing (outside its cooldown and budget, with enough
        evidence) requests a retraining.
    label_budget_per_day
        Labels the active-learning queue may ask operators for per day.
    federated_min_plants
        A federated campaign when at least this many plants show the same change; a local
        fine-tune otherwise.
    """

    kind: Literal[PolicyKind.RETRAINING] = PolicyKind.RETRAINING
    triggers: list[Trigger] = Field(min_length=1, max_length=50)
    label_budget_per_day: int = Field(200, ge=0, le=1_000_000)
    federated_min_plants: int = Field(2, ge=2, le=1000)

    @field_validator("triggers")
    @classmethod
    def _unique(cls, value: list[_Trigger]) -> list[_Trigger]:
        names = [t.name for t in value]
        if len(set(names)) != len(names):
            raise ValueError("trigger names must be unique")
        return value

    def gates(self) -> list[Gate]:
        """Return each trigger's firing condition as a gate (pass = the trigger fires)."""
        return [trigger.gate() for trigger in self.triggers]
