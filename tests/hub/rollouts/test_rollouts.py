"""Rollout engine: waves, stages, abort criteria, failure handling, shift windows, resume."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from federation.errors import Conflict, InvalidInput, NotFound
from federation.schemas.rollouts import PlantStage, RolloutRead, RolloutStatus
from hub.audit import service as audit_service
from hub.rollouts import flows
from tests.hub import factories
from tests.hub.rollouts.conftest import DIGEST, PLANTS, SQLITE_ONLY, Fleet, plan_yaml

STAGES = ["plant.shadow", "plant.canary", "plant.promoting", "plant.champion"]


def _stages(row: RolloutRead) -> dict[str, str]:
    return {p.plant_id: p.stage.value for p in row.plants}


def _plant_actions(row: RolloutRead, plant: str) -> list[str]:
    return [s.action for s in row.steps if s.plant_id == plant and s.action.startswith("plant.")]


@SQLITE_ONLY
def test_two_waves_reach_champion_through_governance(fleet: Fleet) -> None:
    started = fleet.start(reason="new model")
    assert started.status is RolloutStatus.RUNNING
    assert started.waves == ["pilot", "rest"]
    assert {p.plant_id: p.wave for p in started.plants} == {
        "fd001": 0,
        "fd002": 1,
        "fd003": 1,
        "fd004": 1,
    }
    assert all(p.previous_version_id == fleet.v1 for p in started.plants)

    # Pilot enters shadow; wave 2 waits. Without predictions it stays in shadow.
    row = fleet.drive(started.id, ticks=3)
    assert _stages(row) == {
        "fd001": "shadow",
        "fd002": "pending",
        "fd003": "pending",
        "fd004": "pending",
    }
    assert fleet.alias("fd001", "shadow") == fleet.v2
    fleet.report_all(samples=20)
    row = fleet.drive(started.id, until=lambda r: r.plants[0].stage is PlantStage.CANARY)
    assert fleet.alias("fd001", "challenger") == fleet.v2
    assert fleet.alias("fd001", "shadow") is None
    # Canary counts from where it began (20): five more predictions are needed.
    assert _stages(fleet.drive(started.id, ticks=2, until=lambda r: False))["fd001"] == "canary"
    fleet.report_all(samples=30)
    row = fleet.drive(started.id)
    assert row.status is RolloutStatus.COMPLETED, row.detail
    assert set(_stages(row).values()) == {"champion"}
    for plant in PLANTS:
        assert fleet.champion(plant) == fleet.v2
        assert _plant_actions(row, plant) == STAGES
    seqs = [s.seq for s in row.steps]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [s.action for s in row.steps if not s.action.startswith("plant.")] == [
        "rollout.start",
        "wave.advanced",
        "rollout.completed",
    ]
    # Champion only through the governance flow: one approved promotion per plant.
    for plant in PLANTS:
        promotions = list(fleet.admin.iter_promotions(plant_id=plant, version_id=fleet.v2))
        assert [p.status.value for p in promotions] == ["approved"]
        assert promotions[0].policy_ref == "gate-auto@1"
    # Every transition is on the audit trail.
    assert fleet.actions("rollout.plant_").count("rollout.plant_champion") == 4
    assert fleet.actions("rollout.")[:1] == ["rollout.start"]
    assert "rollout.complete" in fleet.actions()
    assert fleet.actions().count("promotion.decide") == 4
    with fleet.app.state.session_factory() as session:
        assert audit_service.verify(session=session).ok


def test_breach_aborts_the_wave_and_rolls_it_back(fleet: Fleet) -> None:
    started = fleet.start()
    fleet.report_all(samples=20)
    fleet.drive(started.id, until=lambda r: r.plants[0].stage is PlantStage.CANARY)
    fleet.report("fd001", samples=30)
    fleet.drive(started.id, until=lambda r: r.current_wave == 1)
    # Wave 2: fd002 goes ahead, fd003 and fd004 lag (too few predictions), then fd003 breaches.
    fleet.report("fd003", samples=3)
    fleet.report("fd004", samples=3)
    row = fleet.drive(started.id, until=lambda r: _stages(r)["fd002"] == "champion")
    assert fleet.champion("fd002") == fleet.v2
    fleet.report("fd003", samples=40, fallbacks=8)
    row = fleet.drive(started.id)
    assert row.status is RolloutStatus.ABORTED
    assert "fd003" in row.detail and "max_fallback" in row.detail
    stages = _stages(row)
    assert stages == {
        "fd001": "champion",
        "fd002": "rolled_back",
        "fd003": "rolled_back",
        "fd004": "rolled_back",
    }
    # The pilot keeps v2; the aborted wave's champion went back to v1 through governance.
    assert fleet.champion("fd001") == fleet.v2
    assert fleet.champion("fd002") == fleet.v1
    assert fleet.champion("fd003") == fleet.v1
    breach = next(s for s in row.steps if s.action == "criterion.breached")
    assert breach.plant_id == "fd003" and "rollout.fallback_rate 0.2 > 0.05" in breach.reason
    assert "rollback" in fleet.actions() and "rollout.abort" in fleet.actions()
    lifecycle = {s.version_id: s.state.value for s in fleet.admin.plant_lifecycle("fd002").items}
    assert lifecycle[fleet.v2] == "rolled_back" and lifecycle[fleet.v1] == "champion"


@SQLITE_ONLY
def test_halt_keeps_plants_where_they_stand(fleet: Fleet) -> None:
    fleet.admin.publish_policy(plan_yaml(version=2, handling="halt"))
    started = fleet.start(plan="plan-test@2")
    fleet.report("fd001", samples=20, p99_ms=900.0)
    row = fleet.drive(started.id)
    assert row.status is RolloutStatus.HALTED
    assert "max_p99" in row.detail
    assert _stages(row)["fd001"] == "shadow"
    assert fleet.alias("fd001", "shadow") == fleet.v2
    assert fleet.champion("fd001") == fleet.v1
    # A halted rollout still holds its plants; aborting it rolls the wave back.
    aborted = fleet.admin.rollout_action(started.id, "abort", reason="bad latency")
    assert aborted.status is RolloutStatus.ABORTED
    assert _stages(aborted)["fd001"] == "rolled_back"
    assert _stages(aborted)["fd002"] == "skipped"
    assert fleet.alias("fd001", "shadow") is None
    # A node that cannot load the new version reports it; that counts against the wave.
    again = fleet.start()
    fleet.drive(again.id, ticks=1, until=lambda r: False)
    fleet.report("fd001", samples=0, kind="rollout.load_failed")
    row = fleet.drive(again.id)
    assert row.status is RolloutStatus.ABORTED
    assert "rollout.load_failed" in row.detail


@SQLITE_ONLY
def test_pause_resume_and_shift_window_in_plant_time(fleet: Fleet) -> None:
    extra = (
        'shift_windows:\n  - name: changeover\n    start: "10:00"\n    end: "11:00"\n'
        "plant_timezones:\n  fd001: Europe/Berlin\n"
    )
    fleet.admin.publish_policy(plan_yaml(version=3, extra=extra))
    started = fleet.start(plan="plan-test@3")
    paused = fleet.admin.rollout_action(started.id, "pause", reason="wait")
    assert paused.status is RolloutStatus.PAUSED
    assert _stages(fleet.drive(started.id, ticks=2))["fd001"] == "pending"
    with pytest.raises(Conflict):
        fleet.admin.rollout_action(started.id, "pause")
    assert fleet.admin.rollout_action(started.id, "resume").status is RolloutStatus.RUNNING
    assert fleet.actions("rollout.pause") == ["rollout.pause"]
    store = fleet.app.state.artifact_store
    inside = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)  # 10:30 in Berlin
    outside = dt.datetime(2026, 12, 7, 10, 30, tzinfo=dt.UTC)  # 11:30 in Berlin
    with fleet.app.state.session_factory() as session:
        flows.advance(session=session, store=store, rollout_id=started.id, now=inside)
    row = fleet.admin.get_rollout(started.id)
    assert _stages(row)["fd001"] == "pending"
    assert row.plants[0].detail == "held by shift window 'changeover'"
    with fleet.app.state.session_factory() as session:
        flows.advance(session=session, store=store, rollout_id=started.id, now=outside)
    assert _stages(fleet.admin.get_rollout(started.id))["fd001"] == "shadow"


def test_a_new_worker_resumes_without_repeating_or_skipping(fleet: Fleet) -> None:
    started = fleet.start()
    fleet.report_all(samples=20)
    first = fleet.worker()
    first.poll_seconds = 0.02
    first.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = fleet.read(started.id)
        if row.plants[0].stage is PlantStage.CANARY:
            break
        time.sleep(0.02)
    first.stop()
    assert not first.alive
    stopped_at = fleet.read(started.id)
    assert stopped_at.status is RolloutStatus.RUNNING
    fleet.report_all(samples=40)
    second = fleet.worker()
    second.poll_seconds = 0.02
    second.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = fleet.read(started.id)
        if row.status is not RolloutStatus.RUNNING:
            break
        time.sleep(0.02)
    second.stop()
    assert row.status is RolloutStatus.COMPLETED, row.detail
    assert [s.seq for s in row.steps] == list(range(1, len(row.steps) + 1))
    assert row.steps[: len(stopped_at.steps)] == stopped_at.steps
    for plant in PLANTS:
        assert _plant_actions(row, plant) == STAGES
        assert len(list(fleet.admin.iter_promotions(plant_id=plant, version_id=fleet.v2))) == 1


@SQLITE_ONLY
def test_restart_between_promotion_and_its_record_adopts_the_promotion(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = fleet.start(plants=["fd001", "fd002"])
    fleet.report_all(samples=20)
    real_move = flows._move
    crashed = threading.Event()

    def crash(session, rollout, plant, to, now, reason, **kwargs):  # type: ignore[no-untyped-def]
        if to is PlantStage.PROMOTING and not crashed.is_set():
            crashed.set()
            raise RuntimeError("hub killed")
        return real_move(session, rollout, plant, to, now, reason, **kwargs)

    monkeypatch.setattr(flows, "_move", crash)
    fleet.drive(started.id, until=lambda r: r.plants[0].stage is PlantStage.CANARY)
    fleet.report("fd001", samples=30)
    fleet.drive(started.id, ticks=4, until=lambda r: crashed.is_set())
    assert crashed.is_set()
    # The promotion committed, its rollout record did not: the plant is still in canary.
    assert _stages(fleet.admin.get_rollout(started.id))["fd001"] == "canary"
    row = fleet.drive(started.id)
    assert row.status is RolloutStatus.COMPLETED
    for plant in ("fd001", "fd002"):
        promotions = list(fleet.admin.iter_promotions(plant_id=plant, version_id=fleet.v2))
        assert len(promotions) == 1
        assert _plant_actions(row, plant) == STAGES


@SQLITE_ONLY
def test_bad_input(fleet: Fleet) -> None:
    with pytest.raises(NotFound):
        fleet.start(plan="nope@1")
    with pytest.raises(InvalidInput, match="promotion_gate policy; a rollout needs"):
        fleet.start(plan="gate-auto@1")
    with pytest.raises(InvalidInput, match="name the promotion gate"):
        fleet.start(gate=None)
    with pytest.raises(InvalidInput, match="needs a promotion gate"):
        fleet.start(gate="plan-test@1")
    with pytest.raises(NotFound):
        fleet.start(plants=["fd001", "nowhere"])
    with pytest.raises(InvalidInput, match="wave 'pilot'"):
        fleet.start(plants=["fd002", "fd003"])
    with fleet.app.state.session_factory() as session:
        bare = factories.version(session, label="3.0")
    with pytest.raises(InvalidInput, match="has no artifact"):
        fleet.start(version_id=bare.id)
    with fleet.app.state.session_factory() as session:
        worse = factories.version(
            session, label="3.1", metrics={"rmse": 25.0}, artifact_digest=DIGEST
        )
    response = fleet.client.post(
        "/api/v1/rollouts",
        json={"plan": "plan-test@1", "version_id": worse.id, "gate": "gate-auto@1"},
        headers={"Authorization": f"Bearer {fleet.tokens.admin}"},
    )
    assert response.status_code == 409, response.text
    problem = response.json()
    assert "fails gate gate-auto@1 at fd001" in problem["detail"]
    assert [e["path"] for e in problem["errors"]] == ["gate.max_rmse"]
    assert fleet.admin.list_rollouts().items == []
    fleet.start(plants=["fd001", "fd002"])
    with pytest.raises(Conflict, match="fd001 \\(rollout 1\\)"):
        fleet.start(plants=["fd001", "fd003"])
    response = fleet.client.post(
        "/api/v1/rollouts",
        json={
            "plan": "plan-test@1",
            "version_id": fleet.v2,
            "gate": "gate-auto@1",
            "plants": ["fd001", "fd002"],
        },
        headers={"Authorization": f"Bearer {fleet.tokens.admin}"},
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "conflict"
    response = fleet.client.post(
        "/api/v1/rollouts",
        json={"plan": "plan-test@1", "version_id": fleet.v2},
        headers={"Authorization": f"Bearer {fleet.tokens.plant}"},
    )
    assert response.status_code == 403
    response = fleet.client.post(
        "/api/v1/rollouts",
        json={"plan": "cost-default@1x", "version_id": fleet.v2, "gate": "gate-auto@1"},
        headers={"Authorization": f"Bearer {fleet.tokens.admin}"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "invalid_input"
