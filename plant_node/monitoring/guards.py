"""When a chunk's performance estimate cannot be trusted: input guards and a concept-shift guard.

CBPE and DLE estimate performance under *covariate* shift: the inputs may move, but the
relationship between inputs and labels must stay what it was on the reference. Two kinds of
evidence say it does not hold on a chunk:

- **Input guards** (:func:`estimate_guards`): the chunk's inputs are outside what the
  estimator learned on (nulls, values out of the reference range, flat sensors, a joint
  pattern the reference PCA cannot reconstruct). Those chunks are flagged one by one.
- **Concept shift** (:func:`update_concept`): realized labels disagree with the estimate
  beyond its confidence band on ``confirm`` labelled chunks in a row, or a drift alert
  names a feature the recipe's failure modes depend on (a new failure mechanism may be at
  work). From then on every estimate is flagged :data:`CONCEPT_SHIFT_KEY`, described as
  ``unreliable (concept shift suspected)``, until the reference is refit (a new monitor
  starts from a fresh state).

:func:`band_coverage` reports how often the realized value fell inside the band.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plant_node.monitoring.alerts import Alert, AlertKind, AlertRule
from plant_node.monitoring.drift import MULTIVARIATE_METRIC

if TYPE_CHECKING:
    from plant_node.monitoring.estimation import ChunkPerformance

#: Rules whose breach on a chunk means its inputs are not what the performance estimator
#: learned on: nulls (imputed), values outside the reference range, flat sensors, or rows
#: whose joint pattern the reference PCA cannot reconstruct (a recalibrated sensor, a new
#: fault mode). CBPE and DLE are valid under covariate shift inside the reference's support;
#: on such a chunk the estimate is kept on the node but flagged, and the hub gets the
#: reasons instead of the number. Univariate feature drift alone does not flag (that is
#: covariate shift), nor do late rows (real readings, only late).
ESTIMATE_GUARDS = (
    "integrity:null_rate",
    "integrity:out_of_range_rate",
    "integrity:stuck_rate",
    f"drift:*:{MULTIVARIATE_METRIC}",
)
#: Added to the guards when the model reads a window of each unit's recent readings: lost
#: readings then compress the history the model sees (for a per-record model, or over a
#: stop of the line, a gap changes no input).
WINDOWED_GUARD = "integrity:missing_rate"
#: Per-row loss of the model where the label is known (absolute error for a regressor, Brier
#: score for a classifier): its chunk mean is watched by an upper CUSUM calibrated on the
#: reference like every other chunk statistic (:mod:`.detectors`).
REALIZED_LOSS_COLUMN = "realized_loss"
#: Alert key of that CUSUM. The estimators assume the reference's input-label relationship;
#: realized losses building up beyond what the reference's own chunks vary by say it moved,
#: so its alert also marks the following estimates :data:`CONCEPT_SHIFT_KEY`.
REALIZED_LOSS_KEY = f"cusum:{REALIZED_LOSS_COLUMN}"
#: Reason carried by every estimate after a suspected concept shift.
CONCEPT_SHIFT_KEY = "guard:concept_shift"
#: How the node describes :data:`CONCEPT_SHIFT_KEY`.
CONCEPT_SHIFT_TEXT = "unreliable (concept shift suspected)"


def estimate_guards(
    rules: Sequence[AlertRule],
    values: Mapping[str, float],
    guards: Sequence[str] = ESTIMATE_GUARDS,
) -> tuple[str, ...]:
    """Return the guard rules a chunk's values breach: why its estimate is not reliable.

    Parameters
    ----------
    rules
        The monitor's rules (their raise levels come from the reference period).
    values
        The chunk's observed integrity rates and drift scores.
    guards
        Rule keys that guard the estimate (:attr:`.engine.MonitorConfig.estimate_guards`).

    Returns
    -------
    tuple[str, ...]
        Breached guard keys, in ``guards`` order; empty when none.
    """
    by_key = {r.key: r for r in rules}
    out = []
    for key in guards:
        rule, value = by_key.get(key), values.get(key)
        if rule is not None and value is not None and math.isfinite(value):
            if rule.breaches(value):
                out.append(key)
    return tuple(out)


@dataclass(frozen=True)
class ConceptState:
    """Memory of the concept-shift guard between chunks (and runs).

    Parameters
    ----------
    suspected_since
        Chunk from which estimates are flagged; ``None`` while the concept holds.
    reason
        Why, in words (for the chunk record and the operator).
    outside_streak
        Consecutive labelled chunks whose realized value fell outside the band.
    """

    suspected_since: int | None = None
    reason: str | None = None
    outside_streak: int = 0

    @property
    def suspected(self) -> bool:
        """Return whether estimates are flagged."""
        return self.suspected_since is not None


def outside_band(p: ChunkPerformance) -> bool | None:
    """Return whether the realized value is outside ``[lower, upper]`` (``None``: no label)."""
    if p.realized is None or not all(math.isfinite(v) for v in (p.lower, p.upper, p.realized)):
        return None
    return not (p.lower <= p.realized <= p.upper)


def update_concept(
    state: ConceptState,
    *,
    chunk: int,
    performance: Sequence[ChunkPerformance],
    raised: Iterable[Alert],
    failure_mode_features: Sequence[str] = (),
    confirm: int = 2,
) -> ConceptState:
    """Advance the concept-shift guard by one chunk.

    Parameters
    ----------
    state
        The guard's state after the previous chunk.
    chunk
        This chunk's index.
    performance
        This chunk's estimates (the first metric is checked against its realized value).
    raised
        Alerts raised on this chunk (:data:`REALIZED_LOSS_KEY` raises suspicion).
    failure_mode_features
        Features the recipe's failure modes depend on; a drift alert whose named features
        (above their threshold) include one raises suspicion without labels.
    confirm
        Labelled chunks in a row outside the band that confirm a suspicion.

    Returns
    -------
    ConceptState
        The new state (once suspected, it stays suspected).
    """
    if state.suspected:
        return state
    modes = set(failure_mode_features)
    for alert in raised:
        if alert.key == REALIZED_LOSS_KEY:
            reason = (
                f"the realized loss built up to {alert.value:.2f}x its CUSUM limit since chunk "
                f"{alert.since_chunk}: labels disagree with the model beyond the reference"
            )
            return ConceptState(suspected_since=chunk, reason=reason)
        if alert.kind is not AlertKind.DRIFT:
            continue
        named = [n for n, ratio in alert.top_features if ratio >= 1.0 and n in modes]
        if named:
            reason = f"{alert.key} on {', '.join(named)}, which the failure modes depend on"
            return ConceptState(suspected_since=chunk, reason=reason)
    first = performance[0] if performance else None
    out = outside_band(first) if first is not None else None
    if out is None:
        return state
    streak = state.outside_streak + 1 if out else 0
    if streak >= confirm and first is not None:
        reason = (
            f"realized {first.metric} fell outside the estimate's band on {streak} labelled "
            f"chunks in a row (last: {first.realized:.4g} vs [{first.lower:.4g}, "
            f"{first.upper:.4g}])"
        )
        return ConceptState(suspected_since=chunk - streak + 1, reason=reason)
    return ConceptState(outside_streak=streak)


def band_coverage(performance: Iterable[ChunkPerformance]) -> float | None:
    """Share of labelled estimates whose realized value fell inside their band (``None``: none)."""
    checks = [outside_band(p) for p in performance]
    known = [c for c in checks if c is not None]
    return None if not known else 1.0 - sum(known) / len(known)


__all__ = [
    "CONCEPT_SHIFT_KEY",
    "CONCEPT_SHIFT_TEXT",
    "ESTIMATE_GUARDS",
    "REALIZED_LOSS_COLUMN",
    "REALIZED_LOSS_KEY",
    "WINDOWED_GUARD",
    "ConceptState",
    "band_coverage",
    "estimate_guards",
    "outside_band",
    "update_concept",
]
