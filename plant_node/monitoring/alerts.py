"""Control-chart alert rules with hysteresis and de-duplication; pure and deterministic.

A rule watches one series of per-chunk values (an estimated metric, a drift score, an
integrity rate). It keeps the rolling mean of the last ``window`` chunks; when that mean is
past ``raise_at`` for ``raise_after`` consecutive chunks it raises one alert, and it clears
only after ``clear_after`` consecutive chunks back past ``clear_at`` (a stricter level than
``raise_at``, so a value hovering at the threshold does not flap). While an alert is open
the rule raises nothing new: one incident, one page.

:func:`evaluate` takes the rules, the previous :class:`AlertState` and one chunk's
observation and returns the next state and the events; it touches no clock, no database and
no global, so the job can persist the state between scheduler ticks and replays give the
same alerts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

#: Keys of sequential (CUSUM) rules start with this; their value is the sum over its limit.
SEQUENTIAL_PREFIX = "cusum:"


class Direction(StrEnum):
    """Which way is bad for the watched value."""

    ABOVE = "above"
    BELOW = "below"


class AlertKind(StrEnum):
    """What a rule watches."""

    PERFORMANCE = "performance"
    DRIFT = "drift"
    INTEGRITY = "integrity"


class EventType(StrEnum):
    """What happened to an alert on a chunk."""

    RAISED = "raised"
    CLEARED = "cleared"


@dataclass(frozen=True)
class AlertRule:
    """One control-chart rule.

    Parameters
    ----------
    key
        Unique name of the watched series, e.g. ``"performance:rmse"`` or ``"drift:s11:js"``.
    kind
        Performance, drift or integrity.
    direction
        ``BELOW`` when low values are bad (ROC-AUC), ``ABOVE`` when high ones are (RMSE).
    raise_at
        The rolling value must be past this level to count towards raising.
    clear_at
        The rolling value must be back past this level to count towards clearing.
    reference_mean, reference_std
        The reference behaviour of the series, reported in alerts.
    window
        Chunks in the rolling mean.
    raise_after, clear_after
        Consecutive chunks needed to raise and to clear.
    """

    key: str
    kind: AlertKind
    direction: Direction
    raise_at: float
    clear_at: float
    reference_mean: float
    reference_std: float
    window: int = 1
    raise_after: int = 2
    clear_after: int = 2

    def __post_init__(self) -> None:
        if self.window < 1 or self.raise_after < 1 or self.clear_after < 1:
            raise ValueError("window, raise_after and clear_after must be at least 1")
        if self.direction is Direction.ABOVE and self.clear_at > self.raise_at:
            raise ValueError(f"{self.key}: clear_at must not be above raise_at")
        if self.direction is Direction.BELOW and self.clear_at < self.raise_at:
            raise ValueError(f"{self.key}: clear_at must not be below raise_at")

    @classmethod
    def control_chart(
        cls,
        key: str,
        *,
        kind: AlertKind,
        direction: Direction,
        reference_mean: float,
        reference_std: float,
        k: float = 1.0,
        k_clear: float = 0.5,
        window: int = 1,
        raise_after: int = 2,
        clear_after: int = 2,
    ) -> AlertRule:
        """Build a rule that raises at ``k`` sigma and clears within ``k_clear`` sigma.

        Parameters
        ----------
        key, kind, direction, window, raise_after, clear_after
            As on the class.
        reference_mean, reference_std
            Mean and standard deviation of the series over the reference chunks.
        k
            Raise when the rolling value is more than ``k`` sigma worse than the mean.
        k_clear
            Clear when it is back within ``k_clear`` sigma (``k_clear < k``).

        Returns
        -------
        AlertRule
            The rule.
        """
        sign = 1.0 if direction is Direction.ABOVE else -1.0
        return cls(
            key=key,
            kind=kind,
            direction=direction,
            raise_at=reference_mean + sign * k * reference_std,
            clear_at=reference_mean + sign * k_clear * reference_std,
            reference_mean=reference_mean,
            reference_std=reference_std,
            window=window,
            raise_after=raise_after,
            clear_after=clear_after,
        )

    def breaches(self, value: float) -> bool:
        """Return whether ``value`` is past the raise level."""
        if self.direction is Direction.ABOVE:
            return value > self.raise_at
        return value < self.raise_at

    def recovered(self, value: float) -> bool:
        """Return whether ``value`` is back past the clear level."""
        if self.direction is Direction.ABOVE:
            return value <= self.clear_at
        return value >= self.clear_at


@dataclass(frozen=True)
class Alert:
    """An incident: what moved, by how much, since when, and which features drifted most.

    Parameters
    ----------
    key, kind, direction
        From the rule.
    since_chunk, since
        First chunk (and its start time, ISO 8601) of the breaching streak.
    raised_chunk
        Chunk on which the alert was raised.
    value
        Rolling value on the raising chunk.
    worst_value
        Worst rolling value while the alert was open.
    threshold, reference_mean, reference_std
        The raise level and the reference behaviour.
    top_features
        ``(feature, drift score / threshold)`` pairs on the raising chunk, highest first.
    cleared_chunk
        Chunk on which the alert cleared, ``None`` while open.
    """

    key: str
    kind: AlertKind
    direction: Direction
    since_chunk: int
    since: str | None
    raised_chunk: int
    value: float
    worst_value: float
    threshold: float
    reference_mean: float
    reference_std: float
    top_features: list[tuple[str, float]] = field(default_factory=list)
    cleared_chunk: int | None = None

    @property
    def delta(self) -> float:
        """Rolling value minus the reference mean, on the raising chunk."""
        return self.value - self.reference_mean

    @property
    def sigmas(self) -> float:
        """How many reference standard deviations the value moved (inf for a flat reference)."""
        if self.reference_std > 0:
            return self.delta / self.reference_std
        return math.copysign(math.inf, self.delta) if self.delta else 0.0

    def describe(self) -> str:
        """Return a one-line, operator-readable summary."""
        if self.key.startswith(SEQUENTIAL_PREFIX):
            text = (
                f"{self.key}: a sustained shift built up to {self.value:.2f}× the CUSUM limit "
                f"since chunk {self.since_chunk}"
            )
            if self.since:
                text += f" ({self.since})"
            if self.top_features:
                tops = ", ".join(f"{n} ({r:.1f}× limit)" for n, r in self.top_features)
                text += f"; shifted: {tops}"
            return text
        verb = "rose" if self.direction is Direction.ABOVE else "fell"
        moved = (
            f"± {self.reference_std:.2g}, {self.sigmas:+.1f}σ"
            if self.reference_std > 0
            else "and never varied"
        )
        text = (
            f"{self.key} {verb} to {self.value:.4g} (reference {self.reference_mean:.4g} "
            f"{moved}, threshold {self.threshold:.4g}) since chunk {self.since_chunk}"
        )
        if self.since:
            text += f" ({self.since})"
        if self.top_features and self.kind is AlertKind.INTEGRITY:
            tops = ", ".join(f"{n} ({r:.1%})" for n, r in self.top_features)
            text += f"; worst columns: {tops}"
        elif self.top_features:
            tops = ", ".join(f"{n} ({r:.1f}× threshold)" for n, r in self.top_features)
            text += f"; most drifted: {tops}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable form."""
        out = asdict(self)
        out["top_features"] = [list(p) for p in self.top_features]
        out["delta"], out["sigmas"] = self.delta, self.sigmas
        return out


@dataclass(frozen=True)
class AlertEvent:
    """An alert raised or cleared on a chunk."""

    type: EventType
    chunk: int
    alert: Alert


@dataclass(frozen=True)
class RuleState:
    """Per-rule memory between chunks (bounded by the rule's window)."""

    recent: tuple[float, ...] = ()
    streak: int = 0
    streak_start: int | None = None
    streak_since: str | None = None
    recoveries: int = 0
    open_alert: Alert | None = None


@dataclass(frozen=True)
class AlertState:
    """Memory of every rule; persist it between job runs."""

    rules: Mapping[str, RuleState] = field(default_factory=dict)

    def open_alerts(self) -> list[Alert]:
        """Return the alerts currently open, by key."""
        return [s.open_alert for _, s in sorted(self.rules.items()) if s.open_alert]


@dataclass(frozen=True)
class ChunkObservation:
    """One chunk's watched values.

    Parameters
    ----------
    chunk
        Chunk index (increasing).
    values
        Value per rule key; a missing key or NaN leaves that rule's state untouched.
    start
        Chunk start time (ISO 8601), reported as "since".
    top_features
        Most drifted features on this chunk, ``(name, score / threshold)``, highest first.
    context
        Per rule key, the features to name instead of ``top_features`` (e.g. the columns
        with the most nulls for a null-rate rule).
    """

    chunk: int
    values: Mapping[str, float]
    start: str | None = None
    top_features: Sequence[tuple[str, float]] = ()
    context: Mapping[str, Sequence[tuple[str, float]]] = field(default_factory=dict)


def _step(
    rule: AlertRule, state: RuleState, obs: ChunkObservation, value: float
) -> tuple[RuleState, AlertEvent | None]:
    recent = (*state.recent, value)[-rule.window :]
    rolling = sum(recent) / len(recent)
    if state.open_alert is None:
        if rule.breaches(rolling):
            start = state.streak_start if state.streak else obs.chunk
            since = state.streak_since if state.streak else obs.start
            streak = state.streak + 1
            if streak >= rule.raise_after:
                alert = Alert(
                    key=rule.key,
                    kind=rule.kind,
                    direction=rule.direction,
                    since_chunk=start if start is not None else obs.chunk,
                    since=since,
                    raised_chunk=obs.chunk,
                    value=rolling,
                    worst_value=rolling,
                    threshold=rule.raise_at,
                    reference_mean=rule.reference_mean,
                    reference_std=rule.reference_std,
                    top_features=list(obs.context.get(rule.key, obs.top_features)[:3]),
                )
                new = RuleState(recent=recent, open_alert=alert)
                return new, AlertEvent(EventType.RAISED, obs.chunk, alert)
            return replace(
                state, recent=recent, streak=streak, streak_start=start, streak_since=since
            ), None
        return RuleState(recent=recent), None
    worse = max if rule.direction is Direction.ABOVE else min
    alert = replace(state.open_alert, worst_value=worse(state.open_alert.worst_value, rolling))
    recoveries = state.recoveries + 1 if rule.recovered(rolling) else 0
    if recoveries >= rule.clear_after:
        closed = replace(alert, cleared_chunk=obs.chunk)
        return RuleState(recent=recent), AlertEvent(EventType.CLEARED, obs.chunk, closed)
    return RuleState(recent=recent, recoveries=recoveries, open_alert=alert), None


def evaluate(
    rules: Iterable[AlertRule], state: AlertState, observation: ChunkObservation
) -> tuple[AlertState, list[AlertEvent]]:
    """Advance every rule by one chunk.

    Parameters
    ----------
    rules
        The rules; their keys must be unique.
    state
        State returned for the previous chunk (``AlertState()`` at the start).
    observation
        This chunk's values.

    Returns
    -------
    tuple[AlertState, list[AlertEvent]]
        The next state, and the alerts raised or cleared on this chunk.
    """
    states = dict(state.rules)
    events: list[AlertEvent] = []
    for rule in rules:
        value = observation.values.get(rule.key)
        if value is None or not math.isfinite(value):
            continue
        new, event = _step(rule, states.get(rule.key, RuleState()), observation, float(value))
        states[rule.key] = new
        if event:
            events.append(event)
    return AlertState(rules=states), events


def run_rules(
    rules: Sequence[AlertRule],
    observations: Iterable[ChunkObservation],
    state: AlertState | None = None,
) -> tuple[AlertState, list[AlertEvent]]:
    """Evaluate a sequence of chunks in order; return the final state and every event."""
    current = state or AlertState()
    events: list[AlertEvent] = []
    for obs in observations:
        current, new = evaluate(rules, current, obs)
        events.extend(new)
    return current, events


def collect_alerts(events: Iterable[AlertEvent]) -> list[Alert]:
    """Return each incident once, in its latest form (cleared ones carry ``cleared_chunk``)."""
    latest: dict[tuple[str, int], Alert] = {}
    for event in events:
        latest[(event.alert.key, event.alert.since_chunk)] = event.alert
    return sorted(latest.values(), key=lambda a: (a.raised_chunk, a.key))


def confirm_alerts(
    alerts: Iterable[Alert], incidents: Iterable[tuple[int, int | None]]
) -> tuple[int, int]:
    """Count true and false alarms against known incidents.

    An alert is true when its span (``since_chunk`` to ``cleared_chunk``, open-ended while
    open) overlaps an incident span, e.g. chunks whose realized metric breached the
    performance rule once labels arrived, or a failure recorded in maintenance logs.

    Parameters
    ----------
    alerts
        Raised alerts.
    incidents
        ``(first_chunk, last_chunk)`` spans; ``None`` as last chunk means still ongoing.

    Returns
    -------
    tuple[int, int]
        ``(true_alarms, false_alarms)``.
    """
    spans = [(a, math.inf if b is None else b) for a, b in incidents]
    true = false = 0
    for alert in alerts:
        end = math.inf if alert.cleared_chunk is None else alert.cleared_chunk
        if any(alert.since_chunk <= b and a <= end for a, b in spans):
            true += 1
        else:
            false += 1
    return true, false
