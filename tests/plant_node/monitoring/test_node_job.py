"""The monitoring job end to end through the real node app.

FD001 test units are replayed as a running fleet through ``/v1/predict`` (a real ridge RUL
model compiled with OpenVINO), failure records are posted to ``/v1/outcomes``, and the job
runs: first on a stable stream of unseen units (chunks with estimated and realized RMSE, no
alert), then on units whose sensor s11 was recalibrated (+0.6, about 2 reference sigma).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from federation.schemas.metrics_report import MetricsReport
from plant_node.cli import app as node_cli
from plant_node.main import create_app
from plant_node.monitoring.flows import METRICS_STREAM, run_node_monitoring
from plant_node.monitoring.jobs import child_settings
from plant_node.monitoring.models import MonitoringAlert, MonitoringChunk
from plant_node.outbox.models import OutboxItem
from plant_node.replay import failure_records, fleet_requests
from tests.plant_node.keys import auth
from tests.plant_node.monitoring.node_helpers import monitored_node, settings_env

OFFSET = {"s11": 0.6}
_units = [int(u) for u in np.random.default_rng(3).permutation(np.arange(1, 101))]
REFERENCE, STABLE, SHIFTED = _units[:50], _units[50:75], _units[75:]


def _replay(client: TestClient, requests: Iterator[list[dict[str, Any]]], raw: set[float]) -> int:
    n = 0
    for records in requests:
        response = client.post("/v1/predict", json={"baseline": "cmapss", "records": records})
        assert response.status_code == 200, response.text
        n += len(response.json()["predictions"])
        raw.update(v for r in records for k, v in r.items() if k.startswith("s"))
    return n


def _rows(client: TestClient, model: Any) -> list[Any]:
    with client.app.state.node.session_factory() as session:  # type: ignore[attr-defined]
        return list(session.execute(select(model)).scalars())


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, rul_model_dir: Path) -> dict[str, Any]:
    # batches of 300 log rows: each run streams the log in several bounded reads
    settings = monitored_node(
        tmp_path_factory.mktemp("job") / "node", rul_model_dir, monitor_batch_rows=300
    )
    raw: set[float] = set()
    out: dict[str, Any] = {"raw": raw}
    with TestClient(create_app(settings), headers=auth()) as client:
        out["logged"] = _replay(client, fleet_requests(units=REFERENCE, seed=1), raw)
        out["logged"] += _replay(client, fleet_requests(units=STABLE, seed=2), raw)
        posted = client.post(
            "/v1/outcomes", json={"outcomes": failure_records(units=REFERENCE + STABLE)}
        )
        assert posted.status_code == 201, posted.text

        out["stable_run"] = run_node_monitoring(settings)
        out["stable_chunks"] = _rows(client, MonitoringChunk)
        out["stable_alerts"] = _rows(client, MonitoringAlert)
        out["stable_reports"] = [i for i in _rows(client, OutboxItem) if i.stream == METRICS_STREAM]

        _replay(client, fleet_requests(units=SHIFTED, seed=3, offset=OFFSET), raw)
        # the shifted run through the CLI the demo uses, in text form, before any label
        cli = CliRunner().invoke(node_cli, ["monitor", "--once"], env=settings_env(settings))
        assert cli.exit_code == 0, cli.output
        out["shifted_cli"] = cli.output
        out["before_labels"] = {
            c.chunk: (c.n_labels, c.realized) for c in _rows(client, MonitoringChunk)
        }
        # the shifted units fail later: no new rows, but their chunks get realized metrics
        posted = client.post("/v1/outcomes", json={"outcomes": failure_records(units=SHIFTED)})
        assert posted.status_code == 201, posted.text
        out["idle_run"] = run_node_monitoring(settings)

        out["alerts_api"] = client.get("/v1/alerts", params={"status": "open"}).json()
        out["chunks_api"] = client.get("/v1/monitoring/chunks").json()
        out["metrics"] = client.get("/metrics").text
        out["chunks"] = _rows(client, MonitoringChunk)
        out["reports"] = [i for i in _rows(client, OutboxItem) if i.stream == METRICS_STREAM]
    return out


def test_stable_stream_gets_estimated_and_realized_metrics_and_no_alert(scenario):
    (run,) = scenario["stable_run"]
    chunks = scenario["stable_chunks"]

    assert run.status == "monitored" and run.model_name == "fd001-ridge"
    assert len(chunks) >= 5 and [c.chunk for c in chunks] == list(range(len(chunks)))
    assert all(c.n_rows >= 100 and c.metric == "rmse" for c in chunks)
    for c in chunks:
        assert c.estimated is not None and c.realized is not None
        assert c.lower <= c.estimated <= c.upper
        assert c.n_labels == c.n_rows  # every unit's failure was posted
        assert {p["metric"] for p in c.performance} == {"rmse", "mae"}
    rel = [abs(c.estimated - c.realized) / c.realized for c in chunks]
    assert float(np.mean(rel)) < 0.25, rel
    assert scenario["stable_alerts"] == [] and run.raised == []
    # one report per bounded batch, windows back to back over the chunks
    reports = [MetricsReport.model_validate(i.payload) for i in scenario["stable_reports"]]
    assert len(reports) >= 2
    assert [c.chunk for r in reports for c in r.chunks] == [c.chunk for c in chunks]


def test_sensor_offset_raises_a_drift_alert_naming_the_sensor(scenario):
    text = scenario["shifted_cli"]
    first_shifted = len(scenario["stable_chunks"])
    alerts = scenario["alerts_api"]

    assert "cmapss fd001-ridge 1: monitored" in text
    assert re.search(r"chunk .* metric .* estimated .* realized", text)
    assert re.search(r"ALERT drift: drift:features rose .* most drifted: s11", text), text
    drift = next(a for a in alerts if a["key"] == "drift:features")
    assert drift["kind"] == "drift" and drift["status"] == "open"
    assert drift["top_features"][0][0] == "s11"
    assert drift["value"] > drift["threshold"] and drift["sigmas"] > 3
    assert first_shifted <= drift["since_chunk"] <= drift["raised_chunk"] <= first_shifted + 2
    assert "s11" in drift["description"] and drift["since"]
    gauge = re.search(
        r'millwright_node_monitoring_alerts\{baseline="cmapss",kind="drift",status="open"\} (\S+)',
        scenario["metrics"],
    )
    assert gauge and float(gauge.group(1)) == len([a for a in alerts if a["kind"] == "drift"])
    assert (
        'millwright_node_monitoring_metric{baseline="cmapss",kind="estimated",metric="rmse"}'
        in (scenario["metrics"])
    )


def test_chunks_api_and_an_idle_run(scenario):
    api = scenario["chunks_api"]
    (idle,) = scenario["idle_run"]

    assert [c["chunk"] for c in api] == [c.chunk for c in scenario["chunks"]]
    assert all(c["estimated"] is not None for c in api)
    assert api[-1]["top_drift"][0][0] == "s11"
    assert idle.status == "up_to_date" and idle.chunks == []  # nothing new, nothing repeated
    reports = [MetricsReport.model_validate(i.payload) for i in scenario["reports"]]
    first = [r for r in reports if r.revision == 0]
    assert [c.chunk for r in first for c in r.chunks] == [c["chunk"] for c in api]


def test_late_labels_fill_in_realized_metrics_of_earlier_chunks(scenario):
    before = scenario["before_labels"]
    after = {c.chunk: c for c in scenario["chunks"]}
    (idle,) = scenario["idle_run"]
    last = max(after)

    assert before[last] == (0, None)  # estimated only: the shifted units had not failed yet
    assert after[last].n_labels == after[last].n_rows and after[last].realized is not None
    assert after[last].estimated is not None
    assert idle.relabelled == sum(1 for k, (n, _) in before.items() if n < after[k].n_rows)
    assert all(c.realized is not None for c in after.values())


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v, path)
    else:
        yield path, value


def test_metrics_reports_are_anonymized_aggregates(scenario):
    items = [i for i in scenario["reports"] if i.payload["revision"] == 0]
    reports = [MetricsReport.model_validate(i.payload) for i in items]
    unit_ids = {str(u) for u in REFERENCE + STABLE + SHIFTED}

    stable = len(scenario["stable_reports"])
    shifted = reports[stable:]

    assert {i.kind for i in scenario["reports"]} == {"metrics.report"}
    assert [i.idempotency_key for i in items] == [str(r.report_id) for r in reports]
    assert sum(r.alerts.raised for r in reports[:stable]) == 0
    assert sum(r.alerts.raised for r in shifted) >= 1 and shifted[-1].alerts.open >= 1
    details = [a for r in shifted for a in r.alert_details if a.key == "drift:features"]
    assert details and details[0].top_features[0] == "s11"
    # the stable window went out with realized metrics; the shifted one before its labels
    assert all(
        m.realized is not None for r in reports[:stable] for c in r.chunks for m in c.metrics
    )
    shifted_metrics = [m for r in shifted for c in r.chunks for m in c.metrics]
    # each estimate is a number or, where the offset took the inputs outside the reference,
    # the reasons it cannot be trusted
    assert all((m.estimated is None) == bool(m.unreliable) for m in shifted_metrics)
    assert any("drift:*:reconstruction_error" in m.unreliable for m in shifted_metrics)
    assert shifted[-1].chunks[-1].metrics[0].realized is None
    for item in scenario["reports"]:
        leaves = list(_leaves(item.payload))
        keys = {p.rsplit(".", 1)[-1] for p, _ in leaves}
        assert not keys & {"unit", "unit_id", "prediction_id", "inputs", "cycles", "features"}
        fractional = {v for _, v in leaves if isinstance(v, float) and not float(v).is_integer()}
        assert not fractional & scenario["raw"], "a raw sensor reading left the plant"
        strings = {
            v for p, v in leaves if isinstance(v, str) and not p.endswith(("_version", "report_id"))
        }
        assert not strings & unit_ids
        assert all(math.isfinite(v) for _, v in leaves if isinstance(v, float))


def test_monitoring_knobs_come_from_the_recipe_unless_the_node_sets_them(
    tmp_path: Path, rul_model_dir: Path
) -> None:
    import json
    import shutil

    from baselines.recipes import MonitoringKnobs
    from plant_node.config import NodeSettings
    from plant_node.monitoring.flows import _Target, monitoring_knobs

    model = tmp_path / "model"
    shutil.copytree(rul_model_dir, model)
    section = MonitoringKnobs(chunk_size=250, reference_rows=800, performance_k=1.5)
    (model / "recipe.json").write_text(json.dumps({"monitoring": section.model_dump()}))
    node = monitored_node(tmp_path / "node", model)
    target = _Target("cmapss", "rul", "1", False, ("s2",), True)
    bare = NodeSettings(plant_id="plant-m", data_dir=node.data_dir)

    from_recipe = monitoring_knobs(bare, target)
    overridden = monitoring_knobs(node, target)  # the node set chunk size and reference rows
    child = child_settings(bare)

    assert (from_recipe.chunk_size, from_recipe.reference_rows) == (250, 800)
    assert from_recipe.performance_k == 1.5
    assert (overridden.chunk_size, overridden.reference_rows, overridden.min_report_rows) == (
        100,
        1000,
        50,
    )
    assert overridden.performance_k == 1.5  # no node setting for it: the recipe's
    # the scheduler's child process must not turn defaults into explicit overrides
    assert "monitor_chunk_size" not in child
    assert child_settings(node)["monitor_chunk_size"] == 100
    # every explicit setting travels, except the keys: the monitoring child serves no requests
    assert NodeSettings(**child_settings(node)).model_fields_set == (
        node.model_fields_set - {"bootstrap_keys"}
    )
    assert "bootstrap_keys" not in child_settings(node)
    (installed,) = node.cache_path.glob("cmapss/*/recipe.json")
    installed.write_text("{not json")
    assert monitoring_knobs(bare, target) == MonitoringKnobs()


def test_reports_sent_before_the_labels_are_re_sent_as_the_next_revision(scenario):
    (idle,) = scenario["idle_run"]
    items = scenario["reports"]
    first = {i.payload["report_id"]: i for i in items if i.payload["revision"] == 0}
    revised = [i for i in items if i.payload["revision"] > 0]
    chunks = {c.chunk: c for c in scenario["chunks"]}

    # the stable windows went out with every label; only the shifted ones are re-sent
    stable_ids = {i.payload["report_id"] for i in scenario["stable_reports"]}
    assert revised and not {i.payload["report_id"] for i in revised} & stable_ids
    assert sorted(idle.revised) == sorted(f"{i.payload['report_id']} r1" for i in revised)
    assert all(i.seq > first[i.payload["report_id"]].seq for i in revised)  # sent after
    for item in revised:
        report = MetricsReport.model_validate(item.payload)
        old = MetricsReport.model_validate(first[str(report.report_id)].payload)
        assert item.idempotency_key == f"{report.report_id}.r1" and report.revision == 1
        for new_chunk, old_chunk in zip(report.chunks, old.chunks, strict=True):
            row = chunks[new_chunk.chunk]
            for m, o in zip(new_chunk.metrics, old_chunk.metrics, strict=True):
                assert m.n_labels == row.n_rows and m.realized is not None
                # only what the labels changed: the estimate (or why it is unreliable) stays
                assert (m.estimated, m.unreliable) == (o.estimated, o.unreliable)
        assert report.drift == old.drift and report.alerts == old.alerts
