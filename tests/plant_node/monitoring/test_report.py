"""Building the hub report from a real monitoring run: aggregates only, pseudonyms, suppression."""

import json

import pytest

from federation.schemas.metrics_report import MetricsReport, pseudonymize
from plant_node.monitoring.engine import MonitorConfig, fit_monitor, run_monitor
from plant_node.monitoring.report import build_metrics_report
from tests.plant_node.monitoring.conftest import COLUMNS

KEY = b"plant-a-secret-key-0123456789"


@pytest.fixture(scope="module")
def stuck_run(fd001):
    monitor = fit_monitor(fd001["reference"], columns=COLUMNS, config=MonitorConfig(chunk_size=500))
    log = fd001["stable"].copy()
    log.loc[log.index >= 2000, "s7"] = 553.0
    log["latency_ms"] = 2.0
    results, _ = run_monitor(monitor, log)
    return log, results


def _lists(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _lists(v)
    elif isinstance(obj, list):
        yield obj
        for v in obj:
            yield from _lists(v)


def test_report_from_a_real_run_is_valid_and_aggregate_only(stuck_run):
    log, results = stuck_run

    report = build_metrics_report(
        results,
        plant_id="plant-a",
        model_name="cmapss-rul",
        model_version="1.0",
        pseudonym_key=KEY,
        min_rows=200,
    )

    assert report is not None
    data = json.loads(report.model_dump_json())
    MetricsReport.model_validate(data)
    assert report.n_rows == sum(r.n_rows for r in results if r.n_rows >= 200)
    assert report.alerts.raised >= 1 and report.alerts.by_kind["integrity"] >= 1
    assert report.integrity.stuck_sensors["s7"] > 0
    raw_units = {u for r in results for us in r.integrity.stuck.values() for u in us}
    assert set(report.integrity.stuck_units) == {pseudonymize(u, KEY) for u in raw_units}
    assert not raw_units & set(report.integrity.stuck_units)
    # aggregates only: no list grows with the number of rows (at most one entry per unit)
    longest = max(len(lst) for lst in _lists(data))
    assert longest <= max(len(results), len(COLUMNS.features), log["unit_id"].nunique())
    assert longest < len(log) / 100
    assert report.latency_ms is not None and report.latency_ms.p99 == 2.0


def test_small_chunks_are_left_out_and_small_windows_suppressed(stuck_run):
    _, results = stuck_run
    tail = results[-1]
    assert tail.n_rows < 500

    report = build_metrics_report(
        results,
        plant_id="plant-a",
        model_name="cmapss-rul",
        model_version="1.0",
        pseudonym_key=KEY,
        min_rows=500,
    )
    nothing = build_metrics_report(
        results[:1],
        plant_id="plant-a",
        model_name="cmapss-rul",
        model_version="1.0",
        pseudonym_key=KEY,
        min_rows=501,
    )

    assert report is not None and report.suppressed_chunks == 1
    assert tail.chunk not in [c.chunk for c in report.chunks]
    assert nothing is None


def test_a_stuck_sensor_chunk_reports_why_its_estimate_is_unreliable(fd001):
    config = MonitorConfig(chunk_size=500, problem="regression", metrics=("rmse",))
    monitor = fit_monitor(fd001["reference"], columns=COLUMNS, config=config)
    log = fd001["stable"].copy()
    log.loc[log.index >= 2000, "s7"] = 553.0
    results, _ = run_monitor(monitor, log)

    report = build_metrics_report(
        results,
        plant_id="plant-a",
        model_name="cmapss-rul",
        model_version="1.0",
        pseudonym_key=KEY,
        min_rows=100,
    )

    assert report is not None
    by_chunk = {c.chunk: c.metrics[0] for c in report.chunks}
    clean, stuck = by_chunk[0], by_chunk[6]
    assert clean.unreliable == [] and clean.estimated is not None
    assert "integrity:stuck_rate" in stuck.unreliable and stuck.estimated is None
    assert stuck.realized is not None  # labels still speak for the chunk
