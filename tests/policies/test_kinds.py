"""Rollout waves and shift windows, retraining cooldowns, cost impact."""

import datetime as dt

import pytest

from policies import PolicyValidationError, parse_policy, standard_document, validate_policy


def test_waves_expand_explicit_then_growing_shares() -> None:
    plan = standard_document("rollout-default@1")
    fleet = ["fd001", *[f"p{i:02d}" for i in range(7)]]  # 8 plants; 25 % = 2
    waves = plan.expand_waves(fleet)  # type: ignore[union-attr]
    assert waves == [
        ("pilot", ["fd001"]),
        ("fleet", ["p00", "p01"]),
        ("fleet.2", ["p02", "p03", "p04", "p05"]),
        ("fleet.3", ["p06"]),
    ]


def test_wave_needs_exactly_one_selector() -> None:
    base = {"kind": "rollout", "id": "r", "version": 1, "title": "t"}
    with pytest.raises(PolicyValidationError) as caught:
        validate_policy({**base, "waves": [{"name": "w"}]})
    assert caught.value.errors[0]["path"] == "waves.0"
    with pytest.raises(PolicyValidationError, match="two waves"):
        validate_policy({**base, "waves": [{"name": "a", "plants": ["x"]},
                                           {"name": "b", "plants": ["X"]}]})


def test_shift_windows_in_plant_time_zone() -> None:
    plan = standard_document("rollout-default@1")
    # 21:30 UTC is 22:30 in Berlin (night shift) but 15:30 in Chicago.
    when = dt.datetime(2026, 12, 8, 21, 30, tzinfo=dt.UTC)
    assert plan.frozen_window("fd001", when).name == "night-shift"  # type: ignore[union-attr]
    assert plan.frozen_window("fd003", when) is None  # type: ignore[union-attr]
    # Monday 06:30 in Berlin is the weekly changeover; Tuesday 06:30 is not.
    monday = dt.datetime(2026, 12, 7, 5, 30, tzinfo=dt.UTC)
    assert plan.frozen_window("fd001", monday).name == "weekly-changeover"  # type: ignore[union-attr]
    assert plan.frozen_window("fd001", monday + dt.timedelta(days=1)) is None  # type: ignore[union-attr]


def test_unquoted_time_and_unknown_zone_refused() -> None:
    text = (
        "kind: rollout\nid: r\nversion: 1\ntitle: t\nwaves: [{name: w, fleet_share: 1}]\n"
        "shift_windows: [{name: n, start: 22:00, end: '06:00', timezone: Mars/Olympus}]\n"
    )
    with pytest.raises(PolicyValidationError) as caught:
        parse_policy(text)
    assert {e["path"] for e in caught.value.errors} == {
        "shift_windows.0.start", "shift_windows.0.timezone",
    }
    assert "quotes" in caught.value.errors[0]["message"]


def test_retraining_cooldown_budget_and_bad_cron() -> None:
    policy = standard_document("retraining-default@1")
    trigger = policy.triggers[0]  # type: ignore[union-attr]
    assert trigger.refusal(None, 0) is None
    assert "cooling down" in str(trigger.refusal(60, 0))
    assert "daily budget" in str(trigger.refusal(None, 1))
    data = policy.model_dump(mode="json")
    data["triggers"][-1]["cron"] = "61 * * * *"
    with pytest.raises(PolicyValidationError) as caught:
        validate_policy(data)
    assert caught.value.errors[0]["path"] == "triggers.6.schedule.cron"
    data["triggers"][-1] = {"kind": "moon_phase", "name": "m"}
    with pytest.raises(PolicyValidationError) as caught:
        validate_policy(data)
    assert caught.value.errors[0]["path"] == "triggers.6"


def test_cost_impact() -> None:
    cost = standard_document("cost-default@1")
    impact = cost.impact(caught=2, missed=1, false_alarms=5)  # type: ignore[union-attr]
    assert impact == {
        "downtime_hours_avoided": 16.0,
        "cost_avoided": 2 * (12000 * 8 - 4000),
        "cost_of_misses": 96000.0,
        "cost_of_false_alarms": 3000.0,
        "net": 2 * (12000 * 8 - 4000) - 3000.0,
    }
