"""Alert rules: control chart, hysteresis, de-duplication, description, alarm tally."""

import pytest

from plant_node.monitoring.alerts import (
    AlertKind,
    AlertRule,
    AlertState,
    ChunkObservation,
    Direction,
    EventType,
    collect_alerts,
    confirm_alerts,
    evaluate,
    run_rules,
)


def _rule(**kw):
    base = dict(
        kind=AlertKind.PERFORMANCE,
        direction=Direction.BELOW,
        reference_mean=0.9,
        reference_std=0.02,
        k=1.0,
        k_clear=0.5,
        window=1,
        raise_after=2,
        clear_after=2,
    )
    base.update(kw)
    return AlertRule.control_chart("performance:roc_auc", **base)


def _obs(values, key="performance:roc_auc"):
    return [ChunkObservation(chunk=i, values={key: v}, start=f"t{i}") for i, v in enumerate(values)]


def test_control_chart_levels_follow_k_and_direction():
    below = _rule()
    above = _rule(direction=Direction.ABOVE, reference_mean=20.0, reference_std=2.0, k=2.0)

    assert below.raise_at == pytest.approx(0.88)
    assert below.clear_at == pytest.approx(0.89)
    assert above.raise_at == pytest.approx(24.0)
    assert above.clear_at == pytest.approx(21.0)


def test_one_bad_chunk_does_not_raise():
    _, events = run_rules([_rule()], _obs([0.9, 0.5, 0.9, 0.91, 0.5, 0.9]))

    assert events == []


def test_two_consecutive_breaches_raise_once_and_say_since_when():
    state, events = run_rules([_rule()], _obs([0.9, 0.85, 0.84, 0.80, 0.79, 0.83]))

    assert [e.type for e in events] == [EventType.RAISED]
    alert = events[0].alert
    assert (alert.since_chunk, alert.since, alert.raised_chunk) == (1, "t1", 2)
    assert alert.value == pytest.approx(0.84)
    assert alert.worst_value == pytest.approx(0.84)
    assert alert.sigmas == pytest.approx(-3.0)
    assert state.open_alerts()[0].worst_value == pytest.approx(0.79)


def test_hysteresis_needs_clear_level_for_clear_after_chunks():
    # 0.885 is above the raise level (0.88) but below the clear level (0.89): stays open.
    values = [0.85, 0.85, 0.885, 0.885, 0.885, 0.895, 0.87, 0.9, 0.9]
    state, events = run_rules([_rule()], _obs(values))

    assert [(e.type, e.chunk) for e in events] == [(EventType.RAISED, 1), (EventType.CLEARED, 8)]
    assert events[1].alert.cleared_chunk == 8
    assert state.open_alerts() == []


def test_rolling_window_smooths_single_spikes():
    rule = _rule(direction=Direction.ABOVE, reference_mean=10.0, reference_std=1.0, window=3)
    _, events = run_rules([rule], _obs([10, 10, 16, 10, 10, 10, 10, 10], key=rule.key))
    # a 16 spike lifts the 3-chunk mean to 12 for three chunks: raised once, then cleared
    assert [e.type for e in events] == [EventType.RAISED, EventType.CLEARED]
    assert events[0].alert.since_chunk == 2


def test_nan_and_missing_values_leave_state_untouched():
    rule = _rule()
    state, events = evaluate([rule], AlertState(), ChunkObservation(0, {rule.key: 0.5}))
    state, events = evaluate([rule], state, ChunkObservation(1, {rule.key: float("nan")}))
    state, events = evaluate([rule], state, ChunkObservation(2, {}))
    state, events = evaluate([rule], state, ChunkObservation(3, {rule.key: 0.5}))

    assert [e.type for e in events] == [EventType.RAISED]
    assert events[0].alert.since_chunk == 0


def test_alert_names_top_drifted_features_and_describes_itself():
    rule = _rule()
    obs = [
        ChunkObservation(
            i,
            {rule.key: 0.8},
            start="2026-01-01T00:00",
            top_features=[("s11", 2.5), ("s4", 1.2), ("s7", 1.1), ("s9", 1.0)],
        )
        for i in range(2)
    ]
    _, events = run_rules([rule], obs)

    alert = events[0].alert
    assert alert.top_features == [("s11", 2.5), ("s4", 1.2), ("s7", 1.1)]
    text = alert.describe()
    assert "performance:roc_auc fell to 0.8" in text and "s11 (2.5× threshold)" in text
    assert alert.to_dict()["sigmas"] == pytest.approx(-5.0)


def test_evaluate_is_pure_and_deterministic():
    rule = _rule()
    start = AlertState()
    a = evaluate([rule], start, ChunkObservation(0, {rule.key: 0.5}))
    b = evaluate([rule], start, ChunkObservation(0, {rule.key: 0.5}))

    assert a == b
    assert start.rules == {}


def test_invalid_hysteresis_is_refused():
    with pytest.raises(ValueError):
        AlertRule(
            key="x",
            kind=AlertKind.DRIFT,
            direction=Direction.ABOVE,
            raise_at=1.0,
            clear_at=2.0,
            reference_mean=0.5,
            reference_std=0.1,
        )


def test_confirm_alerts_counts_true_and_false_alarms():
    rule = _rule()
    _, events = run_rules([rule], _obs([0.8, 0.8, 0.9, 0.9, 0.9, 0.8, 0.8]))
    alerts = collect_alerts(events)

    assert [(a.since_chunk, a.cleared_chunk) for a in alerts] == [(0, 3), (5, None)]
    assert confirm_alerts(alerts, [(6, None)]) == (1, 1)
    assert confirm_alerts(alerts, []) == (0, 2)
