"""Business impact counts the node computes from its own outcomes (only counts leave it)."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from federation.schemas.metrics_report import ImpactCounts, ImpactMethod, MetricsReport
from plant_node.monitoring.impact import UnitLife, alarm_impact, rul_impact


def _life(
    ruls: list[float], failed_at: float | None = None, last_seen: float | None = None
) -> UnitLife:
    return UnitLife(
        predictions=[(float(c), r) for c, r in enumerate(ruls)],
        failed_at=failed_at,
        last_seen=last_seen,
    )


def test_rul_counts_caught_missed_and_false_alarms() -> None:
    units = [
        _life([80, 50, 20, 5], failed_at=4),  # warned at cycle 2, failed at 4: caught
        _life([90, 70, 60, 40], failed_at=4),  # never below 30: missed
        _life([25, 40, 60], last_seen=40),  # warned at 0, running 40 cycles later: false alarm
        _life([90, 80, 70]),  # running, never warned: counted, nothing else
        _life([20], last_seen=10),  # warned 10 cycles ago: outcome unknown, not counted
    ]

    counts = rul_impact(units, threshold=30, min_units=4)

    assert counts is not None
    assert (counts.units, counts.caught, counts.missed, counts.false_alarms) == (4, 1, 1, 1)
    assert counts.method is ImpactMethod.RUL_THRESHOLD and counts.threshold == 30


def test_small_windows_send_no_counts() -> None:
    assert rul_impact([_life([10], failed_at=1)], threshold=30, min_units=2) is None
    assert alarm_impact([(True, True)], threshold=0.5, min_units=2) is None
    with pytest.raises(ValidationError, match="below the policy minimum"):
        ImpactCounts(method=ImpactMethod.ALARM_OUTCOME, units=3, min_units_policy=5)


def test_alarm_outcomes_are_true_false_or_missed() -> None:
    outcomes = [(True, True), (True, False), (False, True), (False, False), (True, True)]

    counts = alarm_impact(outcomes, threshold=0.4, min_units=5)

    assert counts is not None
    assert (counts.units, counts.caught, counts.false_alarms, counts.missed) == (5, 2, 1, 1)


def test_reports_without_impact_stay_valid() -> None:
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    old = {
        "schema_version": "1",
        "report_id": "6d1f4f3e-3b7a-5c39-9d5e-6a0c2f8b7e41",
        "plant_id": "fd001",
        "model_name": "m",
        "model_version": "1",
        "window_start": start.isoformat(),
        "window_end": (start + dt.timedelta(hours=1)).isoformat(),
        "n_rows": 60,
        "min_rows_policy": 50,
    }

    assert MetricsReport.model_validate(old).impact is None
