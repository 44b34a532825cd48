"""The monitor end to end on real FD001 streams: quiet when stable, fast on an offset."""

import pandas as pd
import pytest

from plant_node.monitoring.alerts import AlertKind
from plant_node.monitoring.service import (
    FEATURE_DRIFT_KEY,
    MonitorConfig,
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
    rest = log[log["timestamp"] >= pd.Timestamp(state.resume_from)]
    second, _ = run_monitor(monitor, rest, state)

    assert [r.chunk for r in first] == [0, 1, 2]
    assert state.next_chunk == 3
    assert sum(r.n_rows for r in first + second) == len(log)
    assert [r.n_rows for r in first] == [r.n_rows for r in whole[:3]]
