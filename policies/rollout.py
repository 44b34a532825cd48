"""Rollout plans: waves, per-wave shadow and canary stages, abort criteria, shift windows."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from policies.base import Frozen, PolicyBase, PolicyKind
from policies.evidence import KNOWN_METRICS
from policies.refs import Slug
from policies.rules import Comparator, Gate


class FailureHandling(StrEnum):
    """What a breached abort criterion does to the wave."""

    ROLLBACK = "rollback"
    HALT = "halt"


class Weekday(StrEnum):
    """Days of the week (ISO order)."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


_DAYS = list(Weekday)


class ShadowStage(Frozen):
    """The new version answers in the shadow of the champion before any traffic moves.

    Parameters
    ----------
    duration_s
        How long the shadow stage lasts at least.
    min_predictions
        Shadow predictions needed before the stage may end.
    """

    duration_s: int = Field(3600, ge=0)
    min_predictions: int = Field(200, ge=0)


class CanaryStage(Frozen):
    """A share of the plant's traffic is served by the new version for a soak time.

    Parameters
    ----------
    share
        Share of requests (0 < share <= 1).
    soak_s
        How long the canary soaks at least.
    min_predictions
        Canary predictions needed before promotion.
    """

    share: float = Field(0.1, gt=0, le=1)
    soak_s: int = Field(3600, ge=0)
    min_predictions: int = Field(200, ge=0)


class Wave(Frozen):
    """One wave: an explicit plant list, or a share of the fleet (optionally growing).

    Parameters
    ----------
    name
        The wave's name.
    plants
        The plants of this wave.
    fleet_share
        Instead of ``plants``: this share of the fleet, taken from plants no earlier wave has.
    increment_factor
        With ``fleet_share`` on the last wave: repeat it, each time ``increment_factor`` times
        as many plants, until the fleet is covered (exponential rollout rate).
    shadow, canary
        The stages each plant goes through.
    promote
        Whether the wave ends by making the new version champion.
    """

    name: Slug
    plants: list[str] | None = Field(None, min_length=1, max_length=1000)
    fleet_share: float | None = Field(None, gt=0, le=1)
    increment_factor: float | None = Field(None, ge=1, le=100)
    shadow: ShadowStage = ShadowStage()
    canary: CanaryStage = CanaryStage()
    promote: bool = True

    @model_validator(mode="after")
    def _one_selector(self) -> Wave:
        if (self.plants is None) == (self.fleet_share is None):
            raise ValueError("a wave names either plants or fleet_share")
        if self.increment_factor is not None and self.fleet_share is None:
            raise ValueError("increment_factor needs fleet_share")
        return self


class _Criterion(Frozen):
    name: Slug
    min_samples: int = Field(100, ge=0)

    def gate(self) -> Gate:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError


class EstimatedMetricWorse(_Criterion):
    """Abort when the estimated metric is ``max_worse_pct`` % worse than the champion's, or more."""

    kind: Literal["estimated_metric_worse"] = "estimated_metric_worse"
    metric: str
    max_worse_pct: float = Field(gt=0, le=1000)

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in KNOWN_METRICS:
            raise ValueError(f"unknown metric {value!r}; known: {', '.join(KNOWN_METRICS)}")
        return value

    def gate(self) -> Gate:
        """Return the healthy condition as a gate."""
        return Gate(
            name=self.name, metric=f"estimated.{self.metric}", op=Comparator.LE,
            threshold=self.max_worse_pct, relative_to=f"champion.estimated.{self.metric}",
            samples="rollout.predictions", min_samples=self.min_samples,
        )


class FallbackRate(_Criterion):
    """Abort when the share of fallback answers exceeds ``max_rate``."""

    kind: Literal["fallback_rate"] = "fallback_rate"
    max_rate: float = Field(ge=0, le=1)

    def gate(self) -> Gate:
        """Return the healthy condition as a gate."""
        return Gate(
            name=self.name, metric="rollout.fallback_rate", op=Comparator.LE,
            threshold=self.max_rate, samples="rollout.predictions", min_samples=self.min_samples,
        )


class HttpP99(_Criterion):
    """Abort when the plant's HTTP p99 latency exceeds ``max_ms``."""

    kind: Literal["http_p99"] = "http_p99"
    max_ms: float = Field(gt=0)

    def gate(self) -> Gate:
        """Return the healthy condition as a gate."""
        return Gate(
            name=self.name, metric="rollout.http_p99_ms", op=Comparator.LE,
            threshold=self.max_ms, samples="rollout.predictions", min_samples=self.min_samples,
        )


class ContractViolationRate(_Criterion):
    """Abort when the share of requests refused by the data contract exceeds ``max_rate``."""

    kind: Literal["contract_violation_rate"] = "contract_violation_rate"
    max_rate: float = Field(ge=0, le=1)

    def gate(self) -> Gate:
        """Return the healthy condition as a gate."""
        return Gate(
            name=self.name, metric="rollout.contract_violation_rate", op=Comparator.LE,
            threshold=self.max_rate, samples="rollout.predictions", min_samples=self.min_samples,
        )


class NodeSilent(_Criterion):
    """Abort when the plant node has not reported for ``timeout_s``."""

    kind: Literal["node_silent"] = "node_silent"
    timeout_s: float = Field(gt=0)
    min_samples: int = Field(0, ge=0)

    def gate(self) -> Gate:
        """Return the healthy condition as a gate."""
        return Gate(
            name=self.name, metric="node.report_age_s", op=Comparator.LE,
            threshold=self.timeout_s,
            samples="rollout.predictions" if self.min_samples else None,
            min_samples=self.min_samples,
        )


AbortCriterion = Annotated[
    EstimatedMetricWorse | FallbackRate | HttpP99 | ContractViolationRate | NodeSilent,
    Field(discriminator="kind"),
]


class ShiftWindow(Frozen):
    """A time window in which nothing changes on a plant (changeover, night shift).

    Parameters
    ----------
    name
        The window's name.
    start, end
        ``"HH:MM"`` local time; ``end <= start`` wraps past midnight.
    days
        The days the window starts on.
    timezone
        IANA time zone; ``None`` uses the plant's (``plant_timezones``, else UTC).
    plants
        The plants it holds for (``None``: every plant).
    """

    name: Slug
    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    end: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    days: list[Weekday] = Field(default_factory=lambda: list(Weekday), min_length=1)
    timezone: str | None = None
    plants: list[str] | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError("write times in quotes, e.g. '22:00' (YAML reads 22:00 as 1320)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            _zone_info(value)
        return value

    def holds(self, local: dt.datetime) -> bool:
        """Tell whether the naive or aware local time ``local`` falls in the window.

        Parameters
        ----------
        local
            The time in the window's time zone.

        Returns
        -------
        bool
            ``True`` inside the window.
        """
        start, end = _minutes(self.start), _minutes(self.end)
        now = local.hour * 60 + local.minute
        day = _DAYS[local.weekday()]
        if start < end:
            return day in self.days and start <= now < end
        yesterday = _DAYS[(local.weekday() - 1) % 7]
        return (day in self.days and now >= start) or (yesterday in self.days and now < end)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _zone_info(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (want an IANA name such as 'Europe/Berlin')"
        ) from None


class RolloutPolicy(PolicyBase):
    """A staged rollout plan.

    Parameters
    ----------
    waves
        The waves, in order.
    abort
        Abort criteria; each needs its minimum sample count before it can breach.
    failure_handling
        ``rollback`` (default) or ``halt`` when a criterion breaches.
    shift_windows
        Windows in which nothing changes on a plant.
    plant_timezones
        Plant -> IANA time zone, for windows without their own.
    """

    kind: Literal[PolicyKind.ROLLOUT] = PolicyKind.ROLLOUT
    waves: list[Wave] = Field(min_length=1, max_length=100)
    abort: list[AbortCriterion] = Field(default_factory=list, max_length=50)
    failure_handling: FailureHandling = FailureHandling.ROLLBACK
    shift_windows: list[ShiftWindow] = Field(default_factory=list, max_length=50)
    plant_timezones: dict[str, str] = Field(default_factory=dict)

    @field_validator("plant_timezones")
    @classmethod
    def _zones(cls, value: dict[str, str]) -> dict[str, str]:
        for zone in value.values():
            _zone_info(zone)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RolloutPolicy:
        names = [w.name for w in self.waves]
        if len(set(names)) != len(names):
            raise ValueError("wave names must be unique")
        if any(w.increment_factor is not None for w in self.waves[:-1]):
            raise ValueError("only the last wave may have an increment_factor")
        seen: set[str] = set()
        for wave in self.waves:
            for plant in wave.plants or []:
                if plant.casefold() in seen:
                    raise ValueError(f"plant {plant!r} is in two waves")
                seen.add(plant.casefold())
        criteria = [c.name for c in self.abort]
        if len(set(criteria)) != len(criteria):
            raise ValueError("abort criterion names must be unique")
        return self

    def gates(self) -> list[Gate]:
        """Return the abort criteria as gates on the healthy condition (a fail is a breach)."""
        return [criterion.gate() for criterion in self.abort]

    def expand_waves(self, plants: Sequence[str]) -> list[tuple[str, list[str]]]:
        """Assign the fleet's plants to waves, deterministically.

        Explicit plant lists come first (plants not in ``plants`` are dropped); share waves
        take ``ceil(share * fleet size)`` of the remaining plants in sorted order; a last
        wave with ``increment_factor`` repeats, growing, until no plant is left (its
        repetitions are named ``<wave>.2``, ``<wave>.3``, ...). Plants no wave takes are not
        rolled out.

        Parameters
        ----------
        plants
            The fleet.

        Returns
        -------
        list[tuple[str, list[str]]]
            ``(wave name, plants)`` in order, empty waves left out.
        """
        fleet = sorted(dict.fromkeys(plants))
        by_fold = {p.casefold(): p for p in fleet}
        explicit = {p.casefold() for w in self.waves for p in w.plants or []}
        pool = [p for p in fleet if p.casefold() not in explicit]
        out: list[tuple[str, list[str]]] = []
        for wave in self.waves:
            if wave.plants is not None:
                chosen = [by_fold[p.casefold()] for p in wave.plants if p.casefold() in by_fold]
                if chosen:
                    out.append((wave.name, chosen))
                continue
            share = wave.fleet_share or 0.0
            round_ = 1
            while pool:
                count = max(1, math.ceil(share * len(fleet) - 1e-9))
                chosen, pool = pool[:count], pool[count:]
                out.append((wave.name if round_ == 1 else f"{wave.name}.{round_}", chosen))
                if wave.increment_factor is None:
                    break
                share *= wave.increment_factor
                round_ += 1
        return out

    def frozen_window(
        self, plant: str, when: dt.datetime, plant_timezone: str | None = None
    ) -> ShiftWindow | None:
        """Return the shift window that forbids changes at ``plant`` at ``when``, if any.

        Parameters
        ----------
        plant
            The plant.
        when
            An aware datetime (naive is read as UTC).
        plant_timezone
            The plant's IANA time zone when ``plant_timezones`` does not name it.

        Returns
        -------
        ShiftWindow | None
            The first window that holds, or ``None`` when a change may happen.
        """
        aware = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
        zones = {k.casefold(): v for k, v in self.plant_timezones.items()}
        for window in self.shift_windows:
            if window.plants is not None and plant.casefold() not in {
                p.casefold() for p in window.plants
            }:
                continue
            zone = window.timezone or zones.get(plant.casefold()) or plant_timezone or "UTC"
            if window.holds(aware.astimezone(_zone_info(zone))):
                return window
        return None
