"""CUSUM design against published run lengths and simulation; firing on a ramp, not on noise."""

import math

import numpy as np
import pytest

from plant_node.monitoring.detectors import (
    CusumState,
    average_run_length,
    build_detectors,
    decision_limit,
    expected_delay,
    step,
)


def test_siegmund_run_lengths_match_the_textbook_values():
    # one-sided CUSUM, k = 0.5: ARL0 about 336 at h = 4 and 930 at h = 5 (Montgomery's
    # two-sided 168 / 465 are half of these); a 1 sigma shift is caught in about 8.4 / 10.4
    assert average_run_length(k=0.5, h=4.0) == pytest.approx(336, rel=0.02)
    assert average_run_length(k=0.5, h=5.0) == pytest.approx(930, rel=0.02)
    assert average_run_length(k=0.5, h=4.0, shift=1.0) == pytest.approx(8.4, rel=0.05)
    assert decision_limit(arl0=336, k=0.5) == pytest.approx(4.0, abs=0.02)
    assert expected_delay(k=0.5, h=4.0, shift=3.0) == pytest.approx(2.0, abs=0.1)


def _run(detector, values):
    state, fired = CusumState(), []
    for i, v in enumerate(values):
        state, ratio = step(detector, state, float(v), chunk=i)
        if ratio > 1:
            fired.append(i)
            state = CusumState()  # restart, to count every alarm of a long stable stream
    return fired


def test_the_false_alarm_rate_of_the_design_holds_on_simulated_stable_chunks():
    bank = build_detectors(
        {"x": [10.0, 2.0, 0.0]}, columns=["x"], row_std={"x": 4.0}, false_alarm_rate=0.01
    )
    (detector,) = [d for d in bank.detectors if d.column == "x"]
    values = np.random.default_rng(0).normal(10.0, 2.0, size=40_000)

    rate = len(_run(detector, values)) / len(values)

    # designed for 0.01 over both sides (Siegmund's approximation is slightly conservative)
    assert 0.004 <= rate <= 0.012
    # a one-sigma step of the rows moves the chunk mean by 4 / 2 of its own sigmas
    assert bank.expected_delays(1.0)["x"] == pytest.approx(
        expected_delay(k=0.5, h=detector.h, shift=2.0)
    )


def test_it_fires_on_a_ramp_within_the_expected_delay_and_not_on_the_same_noise_reordered():
    bank = build_detectors(
        {"x": [0.0, 1.0, 0.0]}, columns=["x"], row_std={}, false_alarm_rate=0.002
    )
    (detector,) = bank.detectors
    rng = np.random.default_rng(3)
    noise = rng.normal(size=60)
    ramp = noise + np.clip(np.arange(60) - 30, 0, None) * 1.0  # one sigma more per chunk

    fired = _run(detector, ramp)
    quiet = _run(detector, rng.permutation(noise))

    assert fired and 30 <= fired[0] <= 30 + 5
    assert fired[0] - 30 <= math.ceil(expected_delay(k=0.5, h=detector.h, shift=3.0)) + 2
    assert quiet == []


def test_autocorrelated_statistics_get_wider_limits_and_constant_columns_none():
    bank = build_detectors(
        {"a": [0.0, 1.0, 0.0], "b": [0.0, 1.0, 0.8], "c": [5.0, 0.0, 0.0], "*": [2.0, 0.1, 0.0]},
        columns=["a", "b", "c"],
        row_std={},
        false_alarm_rate=0.002,
    )
    by = {d.column: d for d in bank.detectors}

    assert set(by) == {"a", "b", "*"}
    assert by["b"].std == pytest.approx(3.0)  # sqrt((1 + 0.8) / (1 - 0.8))
    assert not by["*"].two_sided
    with pytest.raises(ValueError, match="false_alarm_rate"):
        build_detectors({}, columns=[], row_std={}, false_alarm_rate=0.0)


def test_a_cusum_alert_says_what_built_up_and_names_the_shifted_features():
    from plant_node.monitoring.alerts import Alert, AlertKind, Direction

    alert = Alert("cusum:features", AlertKind.DRIFT, Direction.ABOVE, 5, "2026-02-01T10:00:00", 6,
                  1.3, 1.3, 1.0, 0.0, 0.0, top_features=[("s11", 1.3), ("s4", 0.4)])  # fmt: skip

    text = alert.describe()

    assert text.startswith("cusum:features: a sustained shift built up to 1.30× the CUSUM limit")
    assert "since chunk 5 (2026-02-01T10:00:00); shifted: s11 (1.3× limit)" in text
    assert "never varied" not in text
