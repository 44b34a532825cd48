"""The monitor end to end on real FD001 streams: quiet when stable, fast on an offset."""

import pandas as pd
import pytest

from plant_node.monitoring.alerts import AlertKind
from plant_node.monitoring.engine import (
    FEATURE_DRIFT_KEY,
    MonitorConfig,
    estimate_guards,
    fit_monitor,
    raised_alerts,
    run_monitor,
)
from tests.plant_node.monitoring.conftest import COLUMNS

CONFIG = MonitorConfig(chunk_size=500, expected_interval_s=600)


@pytest.fixture(scope="module")
def monitor(fd001):
    return fit_monitor(fd001["reference"], columns=COLUMNS, config=CONFIG)


def test_rules_cover_every_layer(monitor):
    keys = {r.key for r in monitor.rules}

    assert FEATURE_DRIFT_KEY in keys and "drift:*:reconstruction_error" in keys
    assert "drift:prediction" in keys
    assert {"integrity:null_rate", "integrity:stuck_rate", "integrity:missing_rate"} <= keys
    assert not any(r.kind is AlertKind.PERFORMANCE for r in monitor.rules)  # no estimator


def test_stable_fd001_stream_raises_no_alert(monitor, fd001):
    results, state = run_monitor(monitor, fd001["stable"])

    assert len(results) >= 9
    assert raised_alerts(results) == []
    assert state.next_chunk == results[-1].chunk + 1
    assert all(r.latency_ms == {} for r in results)  # no latency column in this log


def test_offset_on_one_sensor_is_detected_within_two_chunks_and_named(monitor, fd001):
    log = fd001["stable"].copy()
    change = 4
    t_change = log["timestamp"].iloc[change * 500]
    after = log["timestamp"] >= t_change
    log.loc[after, "s11"] += 2.0 * monitor.drift.features["s11"].std

    results, _ = run_monitor(monitor, log)

    alerts = raised_alerts(results)
    assert alerts, "the offset went unnoticed"
    first = min(a.raised_chunk for a in alerts)
    assert change <= first <= change + 2
    feature_alert = next(a for a in alerts if a.key == FEATURE_DRIFT_KEY)
    assert feature_alert.top_features[0][0] == "s11"
    assert feature_alert.since_chunk == change
    assert pd.Timestamp(feature_alert.since) == t_change


def test_incremental_runs_match_one_run(monitor, fd001):
    log = fd001["stable"].copy()
    log.loc[log.index >= 2000, "s7"] = 553.0  # stuck for every unit from row 2000
    whole, _ = run_monitor(monitor, log)
    part1, state = run_monitor(monitor, log.iloc[:2500])
    part2, _ = run_monitor(monitor, log.iloc[2500:], state)

    def summary(results):
        return [(e.chunk, e.type, e.alert.key) for r in results for e in r.events]

    assert summary(part1 + part2) == summary(whole)
    assert any(key == "integrity:stuck_rate" for _, _, key in summary(whole))


def test_held_back_partial_chunk_is_resumed_by_the_next_run(monitor, fd001):
    log = fd001["stable"]
    whole, _ = run_monitor(monitor, log)

    first, state = run_monitor(monitor, log.iloc[:1700], hold_partial=True)
    rest = log[log["timestamp"] > pd.Timestamp(state.processed_through)]
    second, _ = run_monitor(monitor, rest, state)

    assert [r.chunk for r in first] == [0, 1, 2]
    assert state.next_chunk == 3
    assert sum(r.n_rows for r in first + second) == len(log)
    assert [r.n_rows for r in first] == [r.n_rows for r in whole[:3]]


def test_monitor_and_state_survive_a_restart(monitor, fd001, tmp_path):
    from plant_node.monitoring.engine import load_monitor, load_state, save_monitor, save_state

    log = fd001["stable"]
    assert load_state(tmp_path / "state.pkl").next_chunk == 0  # first run
    whole, _ = run_monitor(monitor, log)
    first, state = run_monitor(monitor, log.iloc[:2000])
    save_monitor(monitor, tmp_path / "monitor.pkl")
    save_state(state, tmp_path / "state.pkl")

    second, _ = run_monitor(
        load_monitor(tmp_path / "monitor.pkl"), log.iloc[2000:], load_state(tmp_path / "state.pkl")
    )

    assert [r.values for r in first + second] == [r.values for r in whole]


def test_an_empty_run_changes_nothing(monitor, fd001):
    _, state = run_monitor(monitor, fd001["stable"].iloc[:1200])

    results, again = run_monitor(monitor, fd001["stable"].iloc[:0], state)

    assert results == [] and again.next_chunk == state.next_chunk
    assert again.alerts == state.alerts


def _classifier_log(n, seed, loc=0.0, scale=1.0, start="2026-01-01"):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(loc=loc, scale=scale, size=(n, 2))
    p = 1 / (1 + np.exp(-(2.5 * x[:, 0] - 1.0)))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=n, freq="min"),
            "unit_id": "line-1",
            "f0": x[:, 0],
            "f1": x[:, 1],
            "prediction": p,
            "label": (rng.random(n) < p).astype(float),
        }
    )


def test_estimated_performance_drop_raises_a_performance_alert_before_labels():
    from plant_node.monitoring import LogColumns

    cols = LogColumns(features=("f0", "f1"))
    config = MonitorConfig(chunk_size=500, problem="classification_binary", metrics=("roc_auc",))
    monitor = fit_monitor(_classifier_log(5000, 0), columns=cols, config=config)
    calm = _classifier_log(2000, 1, start="2026-02-01")
    # the fleet moves onto the decision boundary: the model can no longer rank well
    hard = _classifier_log(2000, 2, loc=0.4, scale=0.3, start="2026-02-05")
    stream = pd.concat([calm, hard], ignore_index=True).drop(columns="label")

    results, _ = run_monitor(monitor, stream)

    perf = [a for a in raised_alerts(results) if a.kind is AlertKind.PERFORMANCE]
    assert len(perf) == 1
    assert perf[0].key == "performance:roc_auc" and perf[0].since_chunk == 4
    assert perf[0].value < perf[0].threshold < perf[0].reference_mean
    assert all(p.realized is None for r in results for p in r.performance)


@pytest.fixture(scope="module")
def dle_monitor(fd001):
    config = MonitorConfig(
        chunk_size=500,
        expected_interval_s=600,
        problem="regression",
        metrics=("rmse",),
        windowed_inputs=True,
    )
    return fit_monitor(fd001["reference"], columns=COLUMNS, config=config)


def test_estimates_on_corrupted_inputs_are_flagged_and_kept_off_the_performance_chart(
    dle_monitor, fd001
):
    log = fd001["stable"].copy()
    late = log.index >= 2500
    log.loc[late & (log.index % 5 == 0), "s4"] = float("nan")  # 20 % nulls from chunk 5
    log.loc[late, "s11"] += 3.0 * dle_monitor.drift.features["s11"].std

    results, _ = run_monitor(dle_monitor, log)

    clean = [r for r in results if r.chunk < 5]
    hit = [r for r in results if r.chunk >= 5 and r.n_rows >= 250]
    assert clean and all(r.unreliable == () for r in clean)
    assert all("performance:rmse" in r.values for r in clean)
    assert hit and all("integrity:null_rate" in r.unreliable for r in hit)
    assert all("drift:*:reconstruction_error" in r.unreliable for r in hit)
    assert all("performance:rmse" not in r.values for r in hit)
    assert all(r.performance[0].estimated > 0 for r in hit)  # the node keeps the number


def test_estimate_guards_read_the_rules_raise_levels(dle_monitor):
    quiet = {"integrity:null_rate": 0.0, "drift:*:reconstruction_error": 0.0}

    assert estimate_guards(dle_monitor.rules, quiet) == ()
    assert estimate_guards(dle_monitor.rules, quiet | {"integrity:null_rate": 0.5}) == (
        "integrity:null_rate",
    )
    assert estimate_guards(dle_monitor.rules, {"integrity:late_rate": 1.0}) == ()
    gap = {"integrity:missing_rate": 0.5}
    assert estimate_guards(dle_monitor.rules, gap) == ()  # a per-record model: no input changed
    guards = dle_monitor.config.estimate_guards
    assert estimate_guards(dle_monitor.rules, gap, guards) == ("integrity:missing_rate",)
