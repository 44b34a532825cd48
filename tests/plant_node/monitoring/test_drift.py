"""Drift metrics against hand-computed values, serialization, bounded summaries."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp, wasserstein_distance

from plant_node.monitoring import assign_chunks
from plant_node.monitoring.drift import (
    DriftReference,
    fit_drift_reference,
    ks_statistic,
    psi,
    score_chunk,
    score_column,
    summarize_column,
)


def test_psi_matches_hand_computation():
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5) = 0.17329 + 0.10137
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75]), epsilon=0.0) == pytest.approx(
        0.274653, abs=1e-6
    )
    assert psi(np.array([10, 30]), np.array([10, 30])) == pytest.approx(0.0)


def test_js_and_psi_on_binned_reference_match_hand_values():
    ref = summarize_column("x", np.array([0.0, 0.0, 1.0, 1.0]), n_bins=2)
    assert ref.edges == [0.5]
    assert ref.proportions == [0.5, 0.5]

    scores = score_column(ref, np.zeros(4))

    # JS divergence (base 2) of [.5, .5] and [1, 0]: mixture [.75, .25];
    # 0.5 * (0.5 log2(.5/.75) + 0.5 log2(.5/.25)) + 0.5 * log2(1/.75) = 0.311278
    assert scores["js"] == pytest.approx(math.sqrt(0.311278), abs=1e-5)
    # PSI with epsilon 1e-4 smoothing of both distributions, by hand:
    e = 1e-4
    r = np.array([0.5 + e, 0.5 + e]) / (1 + 2 * e)
    a = np.array([1 + e, 0 + e]) / (1 + 2 * e)
    assert scores["psi"] == pytest.approx(float(np.sum((a - r) * np.log(a / r))), rel=1e-9)
    # 0.4999 ln(0.9999/0.5) + 0.4999 ln(0.5/1e-4) = 0.3464 + 4.2579
    assert scores["psi"] == pytest.approx(4.6043, abs=1e-3)


def test_ks_and_wasserstein_agree_with_scipy_and_scale():
    rng = np.random.default_rng(0)
    x = rng.normal(size=800)
    y = rng.normal(loc=0.5, size=300)
    ref = summarize_column("x", x, sample_size=10_000)

    assert ks_statistic(np.sort(x), y) == pytest.approx(ks_2samp(x, y).statistic)
    assert score_column(ref, y)["ks"] == pytest.approx(ks_2samp(x, y).statistic)
    assert score_column(ref, y)["wasserstein"] * x.std() == pytest.approx(
        wasserstein_distance(x, y)
    )
    shifted = score_column(ref, x + 2 * x.std())
    assert shifted["wasserstein"] == pytest.approx(2.0, rel=1e-6)
    same = score_column(ref, x)
    assert same["js"] == pytest.approx(0.0, abs=1e-9)
    assert same["ks"] == pytest.approx(0.0, abs=1e-9)
    assert same["psi"] == pytest.approx(0.0, abs=1e-9)


def test_summary_is_bounded_and_ignores_nans():
    x = np.r_[np.arange(100_000, dtype=float), [np.nan] * 10]
    ref = summarize_column("x", x, sample_size=500)

    assert len(ref.sample) == 500
    assert ref.count == 100_000
    assert len(ref.proportions) == len(ref.edges) + 1 == 10
    assert score_column(ref, np.array([np.nan]))["js"] != score_column(ref, np.array([1.0]))["js"]


def _toy(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "timestamp": pd.date_range("2026-01-01", periods=n, freq="min"),
            "a": base + rng.normal(scale=0.3, size=n),
            "b": base + rng.normal(scale=0.3, size=n),
            "c": rng.normal(size=n),
        }
    )
    df["prediction"] = df["a"] * 2
    return df


def test_reference_round_trips_through_json():
    ref = fit_drift_reference(
        _toy(), features=["a", "b", "c"], prediction="prediction", chunk_size=400
    )

    again = DriftReference.from_dict(json.loads(json.dumps(ref.to_dict())))

    assert again == ref


def test_shifted_chunk_is_flagged_and_broken_correlation_moves_pca():
    ref = fit_drift_reference(
        _toy(), features=["a", "b", "c"], prediction="prediction", chunk_size=400
    )
    fresh = assign_chunks(_toy(seed=1), timestamp="timestamp", size=400)
    rows = fresh[fresh["_chunk"] == 0].copy()

    calm = score_chunk(ref, rows)
    rows["c"] += 3.0
    shifted = score_chunk(ref, rows)
    decorrelated = rows.assign(b=np.random.default_rng(2).permutation(rows["b"].to_numpy()))

    assert calm.drifted == []
    assert ("c", "js") in shifted.drifted and ("c", "psi") in shifted.drifted
    assert next(iter(shifted.excess(ref))) == "c"
    assert (
        score_chunk(ref, decorrelated).multivariate
        > ref.thresholds["*"]["reconstruction_error"].upper
    )
