"""The app: health, readiness, metrics, problem+json errors, and the CLI database command."""

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from plant_node.cli import app as cli_app
from plant_node.config import NodeSettings
from plant_node.main import create_app
from tests.plant_node.keys import auth


def test_health_ready_metrics(node_settings: NodeSettings) -> None:
    with TestClient(create_app(node_settings), headers=auth()) as client:
        health = client.get("/v1/health")
        ready = client.get("/v1/ready")
        metrics = client.get("/metrics")

    assert health.status_code == 200
    assert health.json() == {"status": "ok", "plant_id": "plant-t"}
    assert ready.status_code == 200, ready.text
    assert ready.json()["database"]["ok"] is True
    assert ready.json()["outbox"]["pending"] == 0
    assert metrics.status_code == 200
    assert "millwright_node_predictions_total" in metrics.text


def test_unmigrated_database_is_not_ready(tmp_path: Path) -> None:
    settings = NodeSettings(plant_id="p", data_dir=tmp_path, outbox_enabled=False)

    with TestClient(create_app(settings), headers=auth()) as client:
        ready = client.get("/v1/ready")

    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"


def test_unknown_route_is_problem_json(node_settings: NodeSettings) -> None:
    with TestClient(create_app(node_settings), headers=auth()) as client:
        response = client.get("/v1/nope")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_cli_db_upgrade(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli_app, ["db", "upgrade", "--plant", "p1", "--data-dir", str(tmp_path), "--format", "json"]
    )

    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["revision"] is not None
    assert (tmp_path / "node.db").exists()


def test_cli_models_install_and_list(tmp_path: Path) -> None:
    from tests.plant_node.serving.irs import build_logistic_ir

    export = build_logistic_ir(tmp_path / "export", [1.0, 2.0], version="3", baseline="ai4i")
    runner = CliRunner()
    common = ["--plant", "p1", "--data-dir", str(tmp_path / "node"), "--format", "json"]

    installed = runner.invoke(cli_app, ["models", "install", str(export), *common])
    listed = runner.invoke(cli_app, ["models", "list", *common])

    assert installed.exit_code == 0, installed.output
    assert json.loads(installed.output)["version"] == "3"
    assert json.loads(listed.output) == {"ai4i": {"champion": "3", "versions": ["3"]}}
