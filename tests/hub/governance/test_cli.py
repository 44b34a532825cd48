"""``millwright hub`` governance and registry-read commands, through the typed HubClient."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import federation.hub_client
from federation.hub_client import HubClient
from hub.cli import app as hub_cli
from tests.hub.fixtures import Tokens
from tests.hub.governance.conftest import SECRET, Governed, gate_yaml

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def test_cli_publishes_promotes_signs_and_reads(
    governed: Governed,
    client: TestClient,
    tokens: Tokens,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: every command's HubClient talks to the in-process hub.
    def in_process(url: str, *, token: str | None = None) -> HubClient:
        return HubClient(client=client, token=token, retries=0)

    monkeypatch.setattr(federation.hub_client, "HubClient", in_process)
    runner = CliRunner()
    policy = tmp_path / "gate.yaml"
    policy.write_text(gate_yaml(version=2, threshold=21.0))
    g = governed

    def run(*args: str, token: str = tokens.admin, stdin: str | None = None) -> str:
        result = runner.invoke(hub_cli, [*args, "--token", token], input=stdin)
        assert result.exit_code == 0, result.output
        return result.output

    # Execute
    published = json.loads(run("policies", "publish", str(policy), "--format", "json"))
    listed = json.loads(run("policies", "list", "--format", "json"))
    shown = run("policies", "show", "gate-test@2")
    diff = run("policies", "diff", "gate-test@1", "gate-test@2")
    pending = run("promote", str(g.good), "--plant", "fd001", "--policy", "gate-test@2",
                  token=g.requester.token)
    refused = runner.invoke(hub_cli, ["promote", str(g.bad), "--plant", "fd002", "--policy",
                                      "gate-test@2", "--token", g.requester.token])
    promotion_id = g.admin.list_promotions(status="pending_approval").items[0].id
    own = runner.invoke(hub_cli, ["approve", str(promotion_id), "--secret-stdin", "--token",
                                  g.requester.token], input=SECRET + "\n")
    approved = json.loads(run("approve", str(promotion_id), "--secret-stdin", "--format", "json",
                              token=g.approver.token, stdin=SECRET + "\n"))
    record = run("promotions", str(promotion_id))
    versions = json.loads(run("versions", "--format", "json"))
    aliases = run("aliases", "fd001")

    # Assert
    assert published["created"] and published["ref"] == "gate-test@2"
    assert [p["ref"] for p in listed] == ["gate-test@1", "gate-test@2"]
    assert "threshold: 21.0" in shown and "rules.0.threshold" in diff
    assert "pending_approval" in pending and "max_rmse" in pending
    assert refused.exit_code == 1 and "refused" in refused.output
    assert own.exit_code == 1 and "four_eyes" in own.output
    assert approved["status"] == "approved"
    assert approved["signatures"][0]["printed_name"] == "Quinn Quality"
    assert "Quinn Quality" in record and "approval" in record
    assert {v["id"] for v in versions} == {g.good, g.bad}
    assert "champion" in aliases and str(g.good) in aliases
    assert "turbofan-rul" in run("models") and "rmse" in run("diff", str(g.good), str(g.bad))
