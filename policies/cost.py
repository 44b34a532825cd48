"""Cost policies: what failures, false alarms and interventions cost at a plant."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from policies.base import PolicyBase, PolicyKind


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
