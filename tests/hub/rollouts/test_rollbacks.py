"""One-call rollback (plant and fleet), the model inventory, and the fleet CLI commands."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import federation.hub_client
from federation.errors import Conflict, NotFound
from federation.fleet_view import inventory_csv
from federation.hub_client import HubClient
from federation.schemas.rollouts import RolloutStatus
from hub.cli import app as hub_cli
from tests.hub.fixtures import auth
from tests.hub.rollouts.conftest import PLANTS, SQLITE_ONLY, Fleet


def test_rollback_one_plant_then_the_fleet(fleet: Fleet) -> None:
    for plant in ("fd001", "fd002", "fd003"):
        fleet.admin.promote(fleet.v2, plant, policy="gate-auto@1")
    result = fleet.admin.rollback("turbofan-rul", plant="fd001", reason="fd001 degrades")
    assert [(r.plant_id, r.from_version_id, r.to_version_id) for r in result.items] == [
        ("fd001", fleet.v2, fleet.v1)
    ]
    assert fleet.champion("fd001") == fleet.v1
    states = {s.version_id: s.state.value for s in fleet.admin.plant_lifecycle("fd001").items}
    assert states == {fleet.v1: "champion", fleet.v2: "rolled_back"}
    assert fleet.actions("rollback") == ["rollback"]
    # v2 was rolled back, so it is not a good version to return to: nothing before v1.
    with pytest.raises(Conflict, match="fd001"):
        fleet.admin.rollback("turbofan-rul", plant="fd001")
    # The fleet: fd004 never ran anything but v1, so the call refuses, naming it, and
    # changes nothing (all or none).
    with pytest.raises(Conflict, match="fd001, fd004"):
        fleet.admin.rollback("turbofan-rul", fleet=True)
    assert fleet.champion("fd002") == fleet.v2
    done = fleet.admin.rollback("turbofan-rul", fleet=True, to=fleet.v1, reason="all back")
    assert sorted(r.plant_id for r in done.items) == ["fd002", "fd003"]
    assert {fleet.champion(p) for p in PLANTS} == {fleet.v1}
    response = fleet.client.post(
        "/api/v1/rollbacks",
        json={"model": "turbofan-rul", "plant": "nowhere"},
        headers=auth(fleet.tokens.admin),
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    response = fleet.client.post(
        "/api/v1/rollbacks",
        json={"model": "turbofan-rul", "plant": "fd001", "fleet": True},
        headers=auth(fleet.tokens.admin),
    )
    assert response.status_code == 422
    response = fleet.client.post(
        "/api/v1/rollbacks",
        json={"model": "turbofan-rul", "plant": "fd001"},
        headers=auth(fleet.tokens.plant),
    )
    assert response.status_code == 403


@SQLITE_ONLY
def test_inventory_answers_which_model_runs_where(fleet: Fleet) -> None:
    rows = fleet.admin.inventory().items
    assert [(r.plant_id, r.version) for r in rows] == [(p, "1.0") for p in PLANTS]
    first = rows[0]
    assert first.model == "turbofan-rul" and first.lineage == ["1.0"]
    assert first.training_data_fingerprint and first.recipe_id is not None
    assert first.last_validated_at is not None and "promotion allowed" in (
        first.last_validation or ""
    )
    assert first.stale and first.last_report_at is None and first.rollout_id is None
    fleet.admin.promote(fleet.v2, "fd002", policy="gate-auto@1")
    started = fleet.start(plants=["fd001", "fd003"])
    fleet.drive(started.id, ticks=1, until=lambda r: False)
    fleet.report("fd002", samples=1, version="2.0")
    (fd002,) = fleet.admin.inventory(plant="fd002").items
    assert fd002.version == "2.0" and fd002.previous_version == "1.0"
    assert fd002.parent_version == "1.0" and fd002.lineage == ["1.0", "2.0"]
    assert not fd002.stale and fd002.last_report_at is not None
    (fd001,) = fleet.admin.inventory(plant="fd001", model="turbofan-rul").items
    assert (fd001.rollout_id, fd001.rollout_stage) == (started.id, "shadow")
    with pytest.raises(NotFound):
        fleet.admin.inventory(plant="nowhere")


@SQLITE_ONLY
def test_fleet_cli(fleet: Fleet, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def in_process(url: str, *, token: str | None = None) -> HubClient:
        return HubClient(client=client, token=token, retries=0)

    monkeypatch.setattr(federation.hub_client, "HubClient", in_process)
    runner = CliRunner()
    token = ["--token", fleet.tokens.admin]

    out = runner.invoke(hub_cli, ["inventory", "--format", "json", *token])
    assert out.exit_code == 0, out.output
    assert [r["plant_id"] for r in json.loads(out.output)] == list(PLANTS)
    out = runner.invoke(hub_cli, ["inventory", "--plant", "fd003", *token])
    assert out.exit_code == 0 and "fd003" in out.output and "fd001" not in out.output

    out = runner.invoke(
        hub_cli,
        [
            "rollout",
            "start",
            str(fleet.v2),
            "--plan",
            "plan-test@1",
            "--gate",
            "gate-auto@1",
            "--format",
            "json",
            *token,
        ],
    )
    assert out.exit_code == 0, out.output
    rollout_id = json.loads(out.output)["id"]
    out = runner.invoke(hub_cli, ["rollout", "status", str(rollout_id), *token])
    assert out.exit_code == 0 and "pilot" in out.output and "pending" in out.output
    out = runner.invoke(hub_cli, ["rollout", "abort", str(rollout_id), "--format", "json", *token])
    assert json.loads(out.output)["status"] == RolloutStatus.ABORTED.value
    out = runner.invoke(hub_cli, ["rollout", "abort", str(rollout_id), *token])
    assert out.exit_code == 1 and "conflict" in out.output

    fleet.admin.promote(fleet.v2, "fd001", policy="gate-auto@1")
    out = runner.invoke(
        hub_cli, ["rollback", "--model", "turbofan-rul", "--plant", "fd001", *token]
    )
    assert out.exit_code == 0, out.output
    assert fleet.champion("fd001") == fleet.v1
    out = runner.invoke(hub_cli, ["rollback", "--model", "turbofan-rul", *token])
    assert out.exit_code == 2
    # --wait: no node confirms within the timeout -> exit 1 naming the plant.
    fleet.admin.promote(fleet.v2, "fd002", policy="gate-auto@1")
    out = runner.invoke(
        hub_cli,
        ["rollback", "--model", "turbofan-rul", "--plant", "fd002", "--wait", "--timeout", "0.2",
         *token],
    )  # fmt: skip
    assert out.exit_code == 1 and "not confirmed after" in out.output and "fd002" in out.output
    out = runner.invoke(hub_cli, ["inventory", "--format", "csv", "--status", "ok", *token])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].startswith("plant_id,model,version")
    out = runner.invoke(hub_cli, ["rollouts", "show", str(rollout_id), *token])
    assert out.exit_code == 0 and "pilot" in out.output
    # Webhooks: create, list, the delivery log (queued rollbacks), rotate, delete.
    out = runner.invoke(
        hub_cli,
        ["webhooks", "create", "http://127.0.0.1:9/h", "--event", "rollback.completed",
         "--format", "json", *token],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    hook = json.loads(out.output)
    fleet.admin.promote(fleet.v2, "fd003", policy="gate-auto@1")
    fleet.admin.rollback("turbofan-rul", plant="fd003", to=fleet.v1)
    out = runner.invoke(hub_cli, ["webhooks", "deliveries", str(hook["id"]), *token])
    assert out.exit_code == 0 and "rollback.completed" in out.output, out.output
    out = runner.invoke(hub_cli, ["webhooks", "list", *token])
    assert out.exit_code == 0 and "http://127.0.0.1:9/h" in out.output
    out = runner.invoke(
        hub_cli, ["webhooks", "rotate-secret", str(hook["id"]), "--format", "json", *token]
    )
    assert out.exit_code == 0 and json.loads(out.output)["secret"] != hook["secret"]
    out = runner.invoke(hub_cli, ["webhooks", "delete", str(hook["id"]), *token])
    assert out.exit_code == 0 and fleet.admin.list_webhooks().items == []
    # The fleet-health types are accepted; an unknown type is a usage error naming the list.
    out = runner.invoke(
        hub_cli,
        ["webhooks", "create", "http://127.0.0.1:9/h", "--event", "node.stale", "--event",
         "alert.raised", "--format", "json", *token],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert sorted(json.loads(out.output)["events"]) == ["alert.raised", "node.stale"]
    out = runner.invoke(
        hub_cli, ["webhooks", "create", "http://127.0.0.1:9/h", "--event", "node.gone", *token]
    )
    assert out.exit_code == 2 and "campaign.finished" in out.output
    assert len(fleet.admin.list_webhooks().items) == 1


def test_rollback_confirmed_when_the_node_reports_serving(fleet: Fleet) -> None:
    fleet.admin.promote(fleet.v2, "fd002", policy="gate-auto@1")
    listing, tag = fleet.admin.poll_assignments("fd002")
    assert listing is not None and tag
    assert {(a.alias.value, a.version) for a in listing.items} == {("champion", "2.0")}
    # Unchanged: 304 with the same ETag and no body.
    response = fleet.client.get(
        "/api/v1/plants/fd002/assignments",
        headers={**auth(fleet.tokens.admin), "If-None-Match": tag},
    )
    assert (response.status_code, response.content, response.headers["etag"]) == (304, b"", tag)
    assert fleet.admin.poll_assignments("fd002", tag) == (None, tag)
    (row,) = fleet.admin.rollback("turbofan-rul", plant="fd002").items
    assert row.confirmed_at is None
    listing, new_tag = fleet.admin.poll_assignments("fd002", tag)
    assert listing is not None and new_tag != tag
    assert [a.version for a in listing.items if a.alias.value == "champion"] == ["1.0"]
    # A node still reporting the old version does not confirm; the version rolled back to does.
    fleet.report("fd002", samples=0, version="2.0", kind="rollout.serving")
    assert fleet.admin.get_rollback(row.id).confirmed_at is None
    (diverged,) = fleet.admin.inventory(plant="fd002").items
    assert (diverged.version, diverged.reported_version, diverged.status.value) == (
        "1.0",
        "2.0",
        "diverged",
    )
    assert [r.plant_id for r in fleet.admin.inventory(status="diverged").items] == ["fd002"]
    fleet.report("fd002", samples=0, version="1.0", kind="rollout.load_failed")
    assert fleet.admin.get_rollback(row.id).confirmed_at is None
    fleet.report("fd002", samples=0, version="1.0", kind="rollout.serving")
    confirmed = fleet.admin.get_rollback(row.id).confirmed_at
    assert confirmed is not None and confirmed >= row.created_at
    (ok,) = fleet.admin.inventory(plant="fd002").items
    assert (ok.reported_version, ok.status.value, ok.previous_version) == ("1.0", "ok", None)
    assert fleet.admin.inventory(status="diverged").items == []
    lines = inventory_csv(fleet.admin.inventory().items).splitlines()
    assert lines[0].startswith("plant_id,model,version,serving_since,reported_version")
    assert len(lines) == 1 + len(PLANTS)
    assert any(line.startswith("fd002,turbofan-rul,1.0,") for line in lines)
    with pytest.raises(NotFound):
        fleet.admin.get_rollback(row.id + 1000)
