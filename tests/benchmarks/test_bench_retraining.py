"""``recovered_fraction``: direction-aware, with a guard for a change that did not hurt."""

from __future__ import annotations

import math

import pytest

from benchmarks.bench_retraining import MIN_HARM, recovered_fraction


def test_lower_is_better_rmse() -> None:
    # champion rmse 15 before the change, 25 after; the new model gets 17
    fraction, reason = recovered_fraction(15.0, 25.0, 17.0, higher_is_better=False)
    assert reason is None
    assert fraction == pytest.approx(0.8)
    # no better than the champion after the change, and worse than it
    assert recovered_fraction(15.0, 25.0, 25.0, higher_is_better=False)[0] == 0.0
    assert recovered_fraction(15.0, 25.0, 30.0, higher_is_better=False)[0] == pytest.approx(-0.5)


def test_higher_is_better_inverts_the_signs() -> None:
    # pr_auc 0.9 before, 0.5 after; the new model 0.8: 3/4 of the loss won back
    fraction, reason = recovered_fraction(0.9, 0.5, 0.8, higher_is_better=True)
    assert reason is None
    assert fraction == pytest.approx(0.75)
    # better than before the change: above 1
    assert recovered_fraction(0.9, 0.5, 1.0, higher_is_better=True)[0] == pytest.approx(1.25)
    # the same numbers read as lower-is-better: the change "helped", so not defined
    assert recovered_fraction(0.9, 0.5, 0.8, higher_is_better=False)[0] is None


def test_a_change_that_did_not_hurt_is_not_a_huge_ratio() -> None:
    # rmse moved by 0.1 % of its value: below MIN_HARM, reported as null with a reason
    assert 15.0 * 0.001 < MIN_HARM * 15.0
    fraction, reason = recovered_fraction(15.0, 15.015, 14.0, higher_is_better=False)
    assert fraction is None
    assert reason is not None and "did not hurt" in reason
    # an unchanged metric, and one that improved, are both refused
    assert recovered_fraction(0.8, 0.8, 0.9, higher_is_better=True)[0] is None
    assert recovered_fraction(0.8, 0.85, 0.9, higher_is_better=True)[0] is None
    # just above the guard it is defined
    fraction, _ = recovered_fraction(10.0, 10.3, 10.15, higher_is_better=False)
    assert fraction == pytest.approx(0.5)


def test_non_finite_metrics_are_refused() -> None:
    fraction, reason = recovered_fraction(15.0, math.nan, 14.0, higher_is_better=False)
    assert fraction is None and reason is not None and "finite" in reason
