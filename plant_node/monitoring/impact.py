"""Business outcome counts of a window, from the node's own outcomes (only counts leave it).

C-MAPSS (remaining useful life): a unit is *warned* at its first prediction with a predicted
RUL at or below the maintenance threshold. A unit that failed after being warned is a
failure caught in time, one that failed unwarned is missed, and a warned unit still running
``threshold`` cycles after its warning is a false alarm. Units whose outcome is not yet known
(running, warned less than ``threshold`` cycles ago) are not counted.

AI4I (failure classification): every labelled prediction counts; an alarm confirmed by a QA
failure label is caught, a refuted alarm is a false alarm, a failure without an alarm is
missed.

Small windows are suppressed: fewer than ``min_units`` counted units give no counts at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from federation.schemas.metrics_report import ImpactCounts, ImpactMethod


@dataclass(frozen=True)
class UnitLife:
    """One unit's predictions (cycle, predicted RUL) and its failure, if it failed."""

    predictions: Sequence[tuple[float, float]]
    failed_at: float | None = None
    last_seen: float | None = None


def rul_impact(
    units: Iterable[UnitLife], *, threshold: float, min_units: int
) -> ImpactCounts | None:
    """Count caught and missed failures and false alarms of RUL predictions.

    Parameters
    ----------
    units
        Every unit predicted in the window, with its failure cycle when it failed.
    threshold
        Maintenance threshold: a predicted RUL at or below it is a warning.
    min_units
        Policy minimum of counted units (below it nothing is reported).

    Returns
    -------
    ImpactCounts | None
        The counts, or None when fewer than ``min_units`` units have a known outcome.
    """
    caught = missed = false = counted = 0
    for unit in units:
        ordered = sorted(unit.predictions)
        warned = next((c for c, rul in ordered if rul <= threshold), None)
        if unit.failed_at is not None:
            counted += 1
            if warned is not None and warned <= unit.failed_at:
                caught += 1
            else:
                missed += 1
            continue
        seen = (
            unit.last_seen if unit.last_seen is not None else (ordered[-1][0] if ordered else None)
        )
        if warned is not None and seen is not None and seen - warned >= threshold:
            counted += 1
            false += 1
        elif warned is None and ordered:
            counted += 1  # running and never warned: a correct silence
    if counted < min_units:
        return None
    return ImpactCounts(
        method=ImpactMethod.RUL_THRESHOLD,
        units=counted,
        min_units_policy=min_units,
        caught=caught,
        missed=missed,
        false_alarms=false,
        threshold=float(threshold),
    )


def alarm_impact(
    outcomes: Iterable[tuple[bool, bool]], *, threshold: float, min_units: int
) -> ImpactCounts | None:
    """Count true alarms, false alarms and missed failures of labelled classifications.

    Parameters
    ----------
    outcomes
        ``(alarm, failed)`` per labelled prediction.
    threshold
        Alarm probability threshold the model used (reported beside the counts).
    min_units
        Policy minimum of labelled predictions (below it nothing is reported).

    Returns
    -------
    ImpactCounts | None
        The counts, or None when fewer than ``min_units`` predictions are labelled.
    """
    caught = missed = false = counted = 0
    for alarm, failed in outcomes:
        counted += 1
        caught += alarm and failed
        false += alarm and not failed
        missed += failed and not alarm
    if counted < min_units:
        return None
    return ImpactCounts(
        method=ImpactMethod.ALARM_OUTCOME,
        units=counted,
        min_units_policy=min_units,
        caught=caught,
        missed=missed,
        false_alarms=false,
        threshold=float(threshold),
    )
