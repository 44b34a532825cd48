"""View models of the dashboard pages (what a template renders, and what its CSV holds)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

from federation.schemas.events import PlantEventRead
from federation.schemas.registry import FieldChange, VersionRead
from hub.metrics.service import ServedVersion


class ViewModel(BaseModel):
    """Base: immutable, arbitrary types allowed (service tuples)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)


class Gate(ViewModel):
    """A plant's gate on a metric: ``metric op threshold`` must hold."""

    metric: str
    op: str
    threshold: float

    def passes(self, value: float) -> bool:
        """Whether ``value`` meets the gate."""
        return {
            "<": value < self.threshold,
            "<=": value <= self.threshold,
            ">": value > self.threshold,
            ">=": value >= self.threshold,
        }.get(self.op, True)

    def margin(self, value: float) -> float:
        """How far inside the gate ``value`` is (negative: breached), relative to it."""
        scale = abs(self.threshold) or 1.0
        inside = self.threshold - value if self.op.startswith("<") else value - self.threshold
        return inside / scale


class FleetRow(ViewModel):
    """One plant x model cell row of the fleet overview."""

    plant_id: str
    plant_name: str
    model: str
    version: str | None
    metric: str | None
    estimated: float | None
    realized: float | None
    gate: Gate | None
    drifted_chunks: int
    psi: float
    integrity_issues: int
    open_alerts: int
    last_report_end: dt.datetime | None
    last_report_age_h: float | None

    @property
    def gate_status(self) -> str:
        """``breach``, ``ok`` or ``unknown`` (no gate or no value)."""
        value = self.estimated if self.estimated is not None else self.realized
        if self.gate is None or value is None:
            return "unknown"
        ok = self.gate.passes(value) and (self.realized is None or self.gate.passes(self.realized))
        return "ok" if ok else "breach"

    @property
    def drift_status(self) -> str:
        """``drift`` when a feature drifted in the latest window, else ``stable``."""
        return "drift" if self.drifted_chunks > 0 else "stable"

    @property
    def integrity_status(self) -> str:
        """``issues`` when rows were missing, late or stuck in the latest window, else ``ok``."""
        return "issues" if self.integrity_issues > 0 else "ok"

    @property
    def margin(self) -> float | None:
        """Relative distance of the estimate (else realized) inside the gate."""
        value = self.estimated if self.estimated is not None else self.realized
        return self.gate.margin(value) if self.gate and value is not None else None

    def severity_key(self) -> tuple[Any, ...]:
        """Sort key, worst first."""
        return (
            -int(self.gate_status == "breach"),
            -int(self.drift_status == "drift"),
            -min(self.open_alerts, 1),
            -int(self.integrity_status == "issues"),
            self.margin if self.margin is not None else float("inf"),
            self.plant_id,
            self.model,
        )


class RankRow(ViewModel):
    """A plant in the comparison's ranking: this period vs the previous one."""

    plant_id: str
    current: float | None
    previous: float | None
    realized: float | None
    baseline: float | None

    @property
    def change(self) -> float | None:
        """Current minus previous period."""
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous


class ComparePage(ViewModel):
    """Plant comparison: daily series per plant and kind, and the ranking."""

    model: str
    metric: str
    plants: list[str]
    start: dt.date
    end: dt.date
    normalize: bool
    days: list[dt.date]
    chart: dict[str, list[float | None]]
    ranking: list[RankRow]
    period_days: int
    lower_is_better: bool


class PlantPage(ViewModel):
    """Everything the plant page shows."""

    plant_id: str
    plant_name: str
    site: str
    lines: list[str]
    models: list[str]
    model: str | None
    champions: dict[str, str]
    served: list[ServedVersion]
    start: dt.date
    end: dt.date
    days: list[dt.date]
    latency: dict[str, list[float | None]]
    alerts_raised: list[float | None]
    fallback_per_1000: list[float | None]
    chunks: list[dict[str, Any]]
    alert_details: list[dict[str, Any]]
    rollouts: list[PlantEventRead]
    alert_events: list[PlantEventRead]


class LineageNode(ViewModel):
    """A version in the lineage tree, indented by ``depth``."""

    version: VersionRead
    depth: int
    current: bool


class RoundRow(ViewModel):
    """One plant in one campaign round."""

    round: int
    plant_id: str
    metrics: dict[str, float]
    bytes: int
    seconds: float


class ModelPage(ViewModel):
    """A version's lineage, campaign rounds and diff to the version it came from."""

    version: VersionRead
    ancestors: list[VersionRead]
    tree: list[LineageNode]
    campaign_id: int | None
    rounds: list[RoundRow]
    previous: VersionRead | None
    diff: list[FieldChange]


class ImpactRow(ViewModel):
    """Business outcomes of a plant in a month, priced when the plant has a cost policy."""

    plant_id: str
    plant_name: str
    month: str
    caught: int
    missed: int
    false_alarms: int
    downtime_hours_avoided: float | None = None
    cost_avoided: float | None = None
    false_alarm_cost: float | None = None
    currency: str | None = None
    policy_ref: str | None = None

    @property
    def net(self) -> float | None:
        """Cost avoided minus the cost of false alarms."""
        if self.cost_avoided is None or self.false_alarm_cost is None:
            return None
        return self.cost_avoided - self.false_alarm_cost
