"""The worker's follow step against a fake Control API: progress, cancel, failure, timeout."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.flower.control import RunState
from federation.flower.results import RunRecorder
from federation.flower.runner import RunNotFound
from federation.schemas.campaigns import CampaignCreate, CampaignStatus
from federation.schemas.federated_run import FailureCode, PlantMetrics
from hub.campaigns import flows, service
from hub.registry.artifacts import LocalArtifactStore
from tests.hub.campaigns.conftest import body


class FakeControl:
    """The two Control API calls ``follow_campaign`` makes, scripted."""

    def __init__(self, status: str = "running", sub_status: str = "") -> None:
        self.state = RunState(7, status, sub_status, "")
        self.stopped: list[int] = []

    def run_state(self, run_id: int) -> RunState:
        return self.state

    def stop_run(self, run_id: int) -> None:
        self.stopped.append(run_id)
        self.state = RunState(run_id, "finished", "stopped", "")


@pytest.fixture
def running(app: FastAPI, client: TestClient, reg: dict[str, Any], tmp_path: Path) -> Any:
    """A campaign marked running as Flower run 7, with one finished round in its results."""
    with app.state.session_factory() as session:
        campaign = service.create_campaign(
            session=session, campaign_in=CampaignCreate(**body(reg)), actor="test"
        )
        service.mark_running(session=session, campaign=campaign, flower_run_id=2**63 + 7)
        campaign_id = campaign.id
    recorder = RunRecorder.start(
        flows.paths_for(tmp_path, campaign_id).results, baseline="cmapss", strategy="fedavg",
        rounds_planned=2, min_participants=2,
    )
    record = recorder.round(1)
    record.participants = ["fd001", "fd002"]
    record.train.per_plant = {p: PlantMetrics(num_examples=50, metrics={"train-loss": 1.0})
                              for p in record.participants}
    record.evaluate.aggregated = {"rmse": 20.0}
    recorder.complete_round(1)
    recorder.round(2)  # started, not finished: must not be copied
    recorder.flush()
    return campaign_id, recorder


def _follow(app: FastAPI, campaign_id: int, control: FakeControl, work_dir: Path) -> Any:
    with app.state.session_factory() as session:
        campaign = service.get_campaign_or_raise(session=session, campaign_id=campaign_id)
        flows.follow_campaign(
            session=session, campaign=campaign, control=control,  # type: ignore[arg-type]
            store=LocalArtifactStore(work_dir / "store"), work_dir=work_dir,
        )
        return service.to_read(session=session, campaign=campaign)


def test_finished_rounds_are_copied_while_running(app: FastAPI, running: Any,
                                                  tmp_path: Path) -> None:
    campaign_id, _ = running
    control = FakeControl()

    read = _follow(app, campaign_id, control, tmp_path)

    assert read.status == CampaignStatus.RUNNING and read.flower_run_id == str(2**63 + 7)
    assert [r.round for r in read.round_records] == [1]
    assert read.round_records[0].evaluate.aggregated == {"rmse": 20.0}
    assert read.participants == ["fd001", "fd002"]
    assert read.samples_per_plant == {"fd001": 50, "fd002": 50}
    assert control.stopped == []


def test_cancel_stops_the_flower_run(app: FastAPI, running: Any, tmp_path: Path) -> None:
    campaign_id, _ = running
    control = FakeControl()
    with app.state.session_factory() as session:
        assert service.cancel_campaign(session=session, campaign_id=campaign_id).status == (
            "cancelling")

    first = _follow(app, campaign_id, control, tmp_path)
    second = _follow(app, campaign_id, control, tmp_path)

    assert control.stopped == [2**63 + 7]
    assert first.status == CampaignStatus.CANCELLING
    assert second.status == CampaignStatus.CANCELLED and "1 of 2 rounds" in second.failure_detail


def test_a_failed_run_ends_the_campaign_with_its_reason(app: FastAPI, running: Any,
                                                        tmp_path: Path) -> None:
    campaign_id, recorder = running
    recorder.fail(FailureCode.NOT_ENOUGH_PARTICIPANTS,
                  "round 2: 1 plant(s) connected after 60s, 2 required", server_round=2)

    read = _follow(app, campaign_id, FakeControl("finished", "failed"), tmp_path)

    assert read.status == CampaignStatus.FAILED
    assert read.failure_code == "not_enough_participants"
    assert "2 required" in read.failure_detail and read.finished_at is not None


class ForgetfulControl(FakeControl):
    """A SuperLink restarted without its state database: it answers, but knows no run."""

    def run_state(self, run_id: int) -> RunState:
        raise RunNotFound(run_id, "127.0.0.1:9092")


def test_a_run_the_superlink_forgot_fails_the_campaign_at_once(
    app: FastAPI, running: Any, tmp_path: Path
) -> None:
    campaign_id, _ = running

    read = _follow(app, campaign_id, ForgetfulControl(), tmp_path)

    # One answer is enough (no 30 retries): a forgotten run never comes back.
    assert read.status == CampaignStatus.FAILED and read.failure_code == "run_lost"
    assert f"does not know Flower run {2**63 + 7}" in read.failure_detail
    assert "lost after 1 of 2 rounds" in read.failure_detail and read.finished_at is not None


def test_a_run_past_its_deadline_is_stopped_and_failed(app: FastAPI, running: Any,
                                                       tmp_path: Path) -> None:
    campaign_id, _ = running
    with app.state.session_factory() as session:
        campaign = service.get_campaign_or_raise(session=session, campaign_id=campaign_id)
        campaign.started_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        session.commit()
    control = FakeControl()

    read = _follow(app, campaign_id, control, tmp_path)

    assert control.stopped == [2**63 + 7]
    assert read.status == CampaignStatus.FAILED and read.failure_code == "timeout"


def test_the_hub_worker_imports_no_torch() -> None:
    code = ("import sys, hub.main, hub.campaigns.worker, hub.campaigns.flows; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_run_config_carries_the_recipes_server_optimizer(
    app: FastAPI, reg: dict[str, Any], tmp_path: Path
) -> None:
    from tests.hub import factories

    with app.state.session_factory() as session:
        recipe = factories.recipe(
            session, "server-opt-recipe",
            hyperparameters={"federation": {"allowed_strategies": ["fedavgm"],
                                            "server_learning_rate": 0.5, "server_momentum": 0.7}},
        )
        campaign = service.create_campaign(
            session=session, actor="test",
            campaign_in=CampaignCreate(**body(reg, recipe_id=recipe.id, strategy="fedavgm")),
        )
        config = flows.run_config(session, campaign, flows.paths_for(tmp_path, campaign.id))

    assert config["strategy"] == "fedavgm"
    assert (config["server-learning-rate"], config["server-momentum"]) == (0.5, 0.7)


class FakeNodesControl:
    """The SuperLink's node list and a captured ``start_run``."""

    def __init__(self, names: list[str]) -> None:
        from federation.flower.control import NodeStatus

        self.nodes = [NodeStatus(100 + i, name, "online") for i, name in enumerate(names)]
        self.config: dict[str, Any] = {}

    def list_nodes(self) -> list[Any]:
        return self.nodes

    def start_run(self, app_dir: Path, config: dict[str, Any]) -> int:
        self.config = config
        return 11


def test_a_one_plant_campaign_samples_only_that_plants_supernode(
    app: FastAPI, reg: dict[str, Any], tmp_path: Path
) -> None:
    # Arrange: four plants' SuperNodes online; a local fine-tune of fd002 alone.
    from federation.apps.run_settings import RunSettings, parse_node_plants, parse_plants
    from federation.strategies import build_strategy

    control = FakeNodesControl(["fd001", "fd002", "fd003", "fd004"])
    with app.state.session_factory() as session:
        campaign = service.create_campaign(
            session=session, actor="test",
            campaign_in=CampaignCreate(**body(reg, plants=["fd002"], min_participants=1)),
        )
        paths = flows.paths_for(tmp_path, campaign.id)
        paths.parent.mkdir(parents=True)
        (paths.parent / "metadata.json").write_text("{}")  # the parent is already unpacked

        # Execute: the hub starts the run; the ServerApp's guard reads the run config.
        flows.start_campaign(
            session=session, campaign=campaign, control=control,  # type: ignore[arg-type]
            store=LocalArtifactStore(tmp_path / "store"), work_dir=tmp_path,
        )
    settings = RunSettings.from_run_config(control.config)
    _, guard = build_strategy(
        "fedavg", recorder=RunRecorder.start(tmp_path / "r.json", baseline="cmapss",
                                             strategy="fedavg", rounds_planned=1,
                                             min_participants=1),
        min_participants=1, node_wait_timeout=0.0,
        node_plants=parse_node_plants(settings.node_plants), plants=parse_plants(settings.plants),
    )

    class Grid:
        def get_node_ids(self) -> list[int]:
            return [n.node_id for n in control.nodes]

    # Assert: only fd002's SuperNode is sampled (the others' data never trains).
    assert parse_plants(settings.plants) == ["fd002"]
    assert guard._wait_for_nodes(Grid(), 1) == [101]  # type: ignore[arg-type]
    # A SuperNode that connected after the map was made is not trusted with the campaign.
    control.nodes.append(type(control.nodes[0])(200, "", "online"))
    assert guard._wait_for_nodes(Grid(), 1) == [101]  # type: ignore[arg-type]
