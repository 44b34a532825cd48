"""Block-bootstrap calibration: thresholds inside each metric's range, live metrics, refusals."""

import numpy as np
import pandas as pd
import pytest

from benchmarks.bench_monitoring import SENSORS
from benchmarks.monitoring_scenarios import unit_ordered
from plant_node.monitoring.calibration import (
    METRIC_MAX,
    ReferenceTooSmall,
    bootstrap_chunks,
    calibration_folds,
    has_room,
)
from plant_node.monitoring.drift import fit_drift_reference
from plant_node.monitoring.engine import (
    FEATURE_DRIFT_KEY,
    SEQUENTIAL_FEATURES_KEY,
    MonitorConfig,
    fit_monitor,
    raised_alerts,
    run_monitor,
)
from tests.plant_node.monitoring.conftest import COLUMNS


@pytest.fixture(scope="module")
def fleet_monitor(fd001):
    config = MonitorConfig(chunk_size=500, expected_interval_s=600)
    return fit_monitor(fd001["reference"], columns=COLUMNS, config=config)


@pytest.fixture(scope="module")
def drift_ref(fleet_monitor):
    return fleet_monitor.drift


def test_every_threshold_lies_inside_its_metrics_range_and_the_live_one_can_fire(drift_ref):
    assert drift_ref.calibration == {"bootstrap_chunks": 300, "folds": "unit"}
    for column, metrics in drift_ref.thresholds.items():
        for metric, thr in metrics.items():
            assert 0.0 <= thr.upper <= METRIC_MAX[metric], (column, metric, thr)
    for feature in SENSORS:
        live = drift_ref.live[feature]
        band = drift_ref.thresholds[feature][live]
        assert band.upper < 0.9 * METRIC_MAX[live], (feature, live, band)


def test_a_feature_that_wanders_in_time_switches_to_a_metric_that_can_still_fire():
    rng = np.random.default_rng(0)
    n = 6000
    # one unit, an ambient temperature that wanders slowly (the AI4I air temperature's shape)
    wander = np.cumsum(rng.normal(size=n)) / 8
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2026-01-01", periods=n, freq="min"),
            "unit_id": "line-1",
            "ambient": wander + rng.normal(scale=0.05, size=n),
            "load": rng.normal(size=n),
        }
    )

    ref = fit_drift_reference(frame, features=["ambient", "load"], unit="unit_id", chunk_size=300)

    assert ref.calibration["folds"] == "time"
    assert ref.thresholds["ambient"]["js"].upper <= 1.0
    assert ref.live["load"] == "js"
    assert ref.live["ambient"] in ("ks", "wasserstein")
    assert has_room(_band(ref, "ambient"), ref.live["ambient"])


def _band(ref, feature):
    from plant_node.monitoring.calibration import Band

    thr = ref.thresholds[feature][ref.live[feature]]
    return Band(upper=thr.upper, mean=thr.reference_mean, std=thr.reference_std, worst=thr.upper)


def test_a_reference_too_small_to_calibrate_is_refused_with_what_it_needs(fd001):
    small = fd001["reference"].iloc[:700]

    with pytest.raises(ReferenceTooSmall, match=r"at least 1000 reference rows"):
        fit_drift_reference(small, features=SENSORS, unit="unit_id", chunk_size=500)


def test_folds_share_no_unit_and_bootstrap_chunks_have_the_chunk_size(fd001):
    ref = fd001["reference"]
    folds, kind = calibration_folds(ref, unit="unit_id", timestamp="timestamp", chunk_size=500)

    units = [set(ref["unit_id"].iloc[f]) for f in folds]
    chunks = bootstrap_chunks(folds[0], chunk_size=500, n_chunks=20, rng=np.random.default_rng(1))

    assert kind == "unit" and not units[0] & units[1]
    assert sum(len(f) for f in folds) == len(ref)
    assert all(len(rows) == 500 and set(rows) <= set(folds[0]) for _, rows in chunks)
    # a whole-chunk block is one run of the unit-ordered fold: a few units, as fed one by one
    whole = [rows for frac, rows in chunks if frac == 1.0]
    assert whole and all(ref["unit_id"].iloc[rows].nunique() <= 8 for rows in whole)


def _one_by_one(stable):
    rows = stable.drop(columns=["timestamp"])
    return unit_ordered(rows, unit="unit", order="cycle", seed=3, t0="2026-02-01", step_s=600)


def test_units_fed_one_by_one_raise_no_alert_on_a_reference_fed_as_a_fleet(fleet_monitor, fd001):
    # the reference interleaves 20 engines per chunk; here a chunk holds two to five
    stream = _one_by_one(fd001["stable"])

    results, _ = run_monitor(fleet_monitor, stream, hold_partial=True)

    assert len(results) >= 8
    assert raised_alerts(results) == []


def test_a_slow_ramp_fed_one_unit_at_a_time_is_caught_by_the_cusum_within_three_chunks(
    fleet_monitor, fd001
):
    stream = _one_by_one(fd001["stable"])
    change = 4
    start = change * 500
    std = fleet_monitor.drift.features["s11"].std
    # 0.1 sigma more per chunk: 1 sigma after ten chunks
    ramp = np.clip(np.arange(len(stream)) - start, 0, None) / 500 / 10
    stream["s11"] = stream["s11"] + std * ramp

    results, _ = run_monitor(fleet_monitor, stream, hold_partial=True)

    alerts = raised_alerts(results)
    cusum = next(a for a in alerts if a.key == SEQUENTIAL_FEATURES_KEY)
    assert change <= cusum.raised_chunk <= change + 3
    assert cusum.top_features[0][0] == "s11"
    assert all(a.raised_chunk >= change for a in alerts)
    # the per-chunk chart sees it later than the CUSUM, if at all
    chart = [a.raised_chunk for a in alerts if a.key == FEATURE_DRIFT_KEY]
    assert not chart or min(chart) >= cusum.raised_chunk


def test_calibration_folds_keep_as_many_pca_axes_as_the_served_basis(monkeypatch):
    # even units: four sensors driven by one latent (one axis holds 65 %); odd units:
    # independent sensors (a fold of them alone needs three axes)
    from plant_node.monitoring import drift as drift_module

    rng = np.random.default_rng(3)
    frames = []
    for u in range(8):
        n = 400
        latent = rng.normal(size=(n, 1))
        x = latent + 0.2 * rng.normal(size=(n, 4)) if u % 2 == 0 else rng.normal(size=(n, 4))
        f = pd.DataFrame(x, columns=["a", "b", "c", "d"])
        f["unit_id"] = f"u{u}"
        f["timestamp"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n), unit="min")
        frames.append(f)
    reference = pd.concat(frames, ignore_index=True)
    fitted = []
    real_fit = drift_module.fit_pca

    def recording_fit(*args, **kwargs):
        pca = real_fit(*args, **kwargs)
        fitted.append(len(pca.components) if pca else None)
        return pca

    monkeypatch.setattr(drift_module, "fit_pca", recording_fit)
    ref = fit_drift_reference(
        reference,
        features=["a", "b", "c", "d"],
        prediction=None,
        unit="unit_id",
        timestamp="timestamp",
        chunk_size=200,
        bootstrap_chunks=20,
    )
    assert ref.pca is not None
    assert len(fitted) == 3  # the served basis, then one per fold
    assert fitted == [len(ref.pca.components)] * 3
    # unconstrained, the folds would disagree: the premise of the test holds
    one = real_fit(reference[reference.unit_id.isin(["u0", "u2", "u4", "u6"])], list("abcd"))
    other = real_fit(reference[reference.unit_id.isin(["u1", "u3", "u5", "u7"])], list("abcd"))
    assert one is not None and other is not None
    assert len(one.components) != len(other.components)
