"""A candidate is validated against the champion metric by metric, sums only per sample."""

from __future__ import annotations

from hub.retraining.service import compare_to_champion


def test_a_sum_over_a_larger_window_is_not_counted_as_worse() -> None:
    # The demo's case: the candidate is better on every mean, and PHM08's *sum* is larger
    # because the plant's newer validation window holds more engines.
    champion = {"rmse": 16.8, "mae": 12.4, "phm08_score": 127.9}
    candidate = {"rmse": 14.7, "mae": 11.1, "phm08_score": 366.4}
    ok, lines = compare_to_champion(candidate, champion)
    assert ok
    assert any("phm08_score not compared" in line for line in lines)


def test_sums_are_compared_per_sample_when_both_counts_are_known() -> None:
    champion = {"rmse": 16.8, "phm08_score": 100.0, "n": 100}
    better = {"rmse": 14.7, "phm08_score": 150.0, "n": 200}  # 0.75 per sample vs 1.0
    worse = {"rmse": 14.7, "phm08_score": 300.0, "n": 200}  # 1.5 per sample
    assert compare_to_champion(better, champion)[0]
    ok, lines = compare_to_champion(worse, champion)
    assert not ok
    assert "phm08_score per sample 1.5 worse than champion 1" in lines


def test_a_worse_mean_fails_and_nothing_comparable_fails_closed() -> None:
    assert not compare_to_champion({"rmse": 18.0}, {"rmse": 16.8})[0]
    assert not compare_to_champion({"f1": 0.7}, {"f1": 0.8})[0]
    ok, lines = compare_to_champion({"phm08_score": 1.0}, {"phm08_score": 2.0})
    assert not ok and "no validation metric shared" in lines[-1]
