"""nannyml hygiene, CBPE and DLE on shared chunks, realized metrics, persistence."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from plant_node.monitoring import LogColumns, assign_chunks
from plant_node.monitoring.chunking import CHUNK_COLUMN
from plant_node.monitoring.estimation import (
    PerformanceEstimator,
    ProblemType,
    realized_metric,
)

LIGHT = "plant_node.monitoring, plant_node.monitoring.engine, plant_node.monitoring.jobs"


def _python(code: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.strip()


def test_nannyml_loads_only_with_estimation_and_never_phones_home():
    env = {k: v for k, v in os.environ.items() if k != "NML_DISABLE_USAGE_LOGGING"}
    light = _python(f"import sys, {LIGHT}; print('nannyml' in sys.modules)", env)
    heavy = _python(
        "import os, sys, plant_node.monitoring.estimation; "
        "print('nannyml' in sys.modules, os.environ['NML_DISABLE_USAGE_LOGGING'])",
        env,
    )

    assert light == "False"
    assert heavy == "True 1"


def test_realized_metrics_by_hand():
    y = np.array([0, 0, 1, 1], dtype=float)
    proba = np.array([0.1, 0.6, 0.4, 0.9])

    assert realized_metric("roc_auc", y, proba >= 0.5, proba) == pytest.approx(0.75)
    assert realized_metric("f1", y, (proba >= 0.5).astype(int)) == pytest.approx(0.5)
    assert realized_metric("rmse", np.array([1.0, 3.0]), np.array([2.0, 1.0])) == pytest.approx(
        np.sqrt(2.5)
    )
    assert realized_metric("mae", np.array([1.0, 3.0]), np.array([2.0, 1.0])) == pytest.approx(1.5)
    assert realized_metric("roc_auc", np.zeros(3), np.zeros(3), np.zeros(3)) is None
    with pytest.raises(ValueError):
        realized_metric("accuracy_of_vibes", y, y)


def _classifier_log(n, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=shift, size=(n, 2))
    p = 1 / (1 + np.exp(-(2.5 * x[:, 0] - 1.0)))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2026-01-01", periods=n, freq="min"),
            "unit_id": "line-1",
            "f0": x[:, 0],
            "f1": x[:, 1],
            "prediction": p,  # calibrated by construction
            "label": (rng.random(n) < p).astype(float),
        }
    )


def test_cbpe_tracks_realized_roc_auc_under_covariate_shift(tmp_path):
    cols = LogColumns(features=("f0", "f1"))
    ref = assign_chunks(_classifier_log(6000, 0), timestamp="timestamp", size=1000)
    ana = assign_chunks(
        _classifier_log(3000, 1, shift=0.8), timestamp="timestamp", size=1000, start_index=6
    )
    est = PerformanceEstimator(problem=ProblemType.CLASSIFICATION, columns=cols).fit(ref)

    out = est.estimate(ana)

    auc = [p for p in out if p.metric == "roc_auc"]
    assert [p.chunk for p in auc] == [6, 7, 8]
    for p in auc:
        assert p.lower <= p.estimated <= p.upper
        assert p.realized is not None and p.n_labels == 1000
        assert abs(p.estimated - p.realized) < 0.03
    mean, std = est.reference_stats["roc_auc"]
    assert 0.7 < mean < 0.95 and std > 0
    # unlabelled rows: estimate only
    blind = est.estimate(ana.assign(label=np.nan))
    assert all(p.realized is None and p.n_labels == 0 for p in blind)
    # persistence on the node
    est.dump(tmp_path / "cbpe.pkl")
    again = PerformanceEstimator.load(tmp_path / "cbpe.pkl")
    assert [p.estimated for p in again.estimate(ana)] == [p.estimated for p in out]


def test_dle_estimates_rmse_on_real_fd001(fd001):
    from tests.plant_node.monitoring.conftest import COLUMNS

    ref = assign_chunks(fd001["reference"], timestamp="timestamp", size=500)
    stable = assign_chunks(fd001["stable"], timestamp="timestamp", size=500)
    est = PerformanceEstimator(problem=ProblemType.REGRESSION, columns=COLUMNS).fit(ref)

    out = [p for p in est.estimate(stable) if p.metric == "rmse" and p.n_labels >= 400]

    est_, real = np.array([p.estimated for p in out]), np.array([p.realized for p in out])
    assert len(out) >= 8
    assert np.mean(np.abs(est_ - real)) / np.mean(real) < 0.25


def test_fit_refuses_unlabelled_reference():
    ref = assign_chunks(_classifier_log(500, 0), timestamp="timestamp", size=100)
    ref.loc[3, "label"] = np.nan
    est = PerformanceEstimator(
        problem=ProblemType.CLASSIFICATION, columns=LogColumns(features=("f0",))
    )

    with pytest.raises(ValueError, match="label"):
        est.fit(ref)


def test_dle_reads_a_null_input_as_the_units_last_reading_not_as_zero(fd001):
    from tests.plant_node.monitoring.conftest import COLUMNS

    ref = assign_chunks(fd001["reference"], timestamp="timestamp", size=500)
    stable = assign_chunks(fd001["stable"], timestamp="timestamp", size=500)
    est = PerformanceEstimator(problem=ProblemType.REGRESSION, columns=COLUMNS).fit(ref)
    holes = stable.copy()
    first = holes.groupby("unit_id").cumcount() == 0
    gone = (holes.index % 3 == 0) & ~first & (holes[CHUNK_COLUMN] == 2)
    holes.loc[gone, "s4"] = np.nan
    held = holes.copy()
    held["s4"] = held.groupby("unit_id")["s4"].ffill()
    zero = holes.copy()
    zero["s4"] = zero["s4"].fillna(0.0)

    def rmse(frame):
        return [p.estimated for p in est.estimate(frame) if p.metric == "rmse" and p.chunk == 2]

    assert rmse(holes) == pytest.approx(rmse(held))
    assert rmse(holes) != pytest.approx(rmse(zero), rel=1e-9)  # LightGBM: null = 0.0


def test_the_confidence_band_does_not_depend_on_the_order_the_reference_was_fed_in(fd001):
    from benchmarks.monitoring_scenarios import unit_ordered
    from tests.plant_node.monitoring.conftest import COLUMNS

    fleet = fd001["reference"]  # 50 engines interleaved: each chunk holds about 20
    one_by_one = unit_ordered(
        fleet, unit="unit_id", order="cycle", seed=3, t0="2026-01-01", step_s=600
    )
    floors = []
    for feed in (fleet, one_by_one):
        ref = assign_chunks(feed, timestamp="timestamp", size=500)
        est = PerformanceEstimator(problem=ProblemType.REGRESSION, columns=COLUMNS).fit(ref)
        floors.append(est.band_floor["rmse"])
        realized = [p.realized for p in est.estimate(ref) if p.metric == "rmse"]
        # never narrower than the spread of the reference's own chunks
        assert est.band_floor["rmse"] >= 2.0 * np.std(realized, ddof=1) - 1e-9
    # the fleet-fed reference gets the band of engines fed one after another
    assert floors[0] >= 0.9 * floors[1]
    assert floors[0] > 0


def test_realized_metrics_agree_with_sklearn_on_random_chunks_with_ties():
    from sklearn.metrics import f1_score, mean_absolute_error, roc_auc_score

    rng = np.random.default_rng(5)
    for _ in range(20):
        y = (rng.random(300) < 0.1).astype(float)
        proba = np.round(rng.random(300) * 0.5 + 0.4 * y, 2)  # rounded: ties
        pred = (proba >= 0.5).astype(int)
        assert realized_metric("roc_auc", y, pred, proba) == pytest.approx(roc_auc_score(y, proba))
        assert realized_metric("f1", y, pred) == pytest.approx(
            f1_score(y.astype(int), pred, zero_division=0)
        )
        r = rng.normal(size=300)
        assert realized_metric("mae", y, r) == pytest.approx(mean_absolute_error(y, r))
    assert realized_metric("f1", np.zeros(5), np.zeros(5)) == 0.0
