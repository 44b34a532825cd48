"""Real ``flower-superlink`` + 3 ``flower-supernode`` processes on loopback, TLS + node auth.

One federation serves every test in this module (in order): a hub campaign (a real hub
app whose worker starts a 2-round C-MAPSS FedProx run with personalization on the
SuperLink, then exports and registers the models) side by side with two poisoned runs
(NaN, x100 update) whose model is compared with the clean run of the same app in-process,
then the SuperLink and a real hub process are SIGKILLed during a campaign and restarted
(while a plant node serving a line replay is SIGKILLed twice beside them), then a
SuperNode is killed mid-run, then a run that cannot meet its minimum participation, and
last the killed campaign's outcome (Flower needs up to a minute to declare its run dead).
Each plant's SuperNode sees only its own data directory.
"""

from __future__ import annotations

import random
import shutil
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from federation.apps.tasks import ToyLinearTask, make_toy_plant_data, write_toy_plant_data
from federation.baselines_publish import publish_export
from federation.flower.deployment import LocalFederation, PlantSite
from federation.flower.processes import free_ports
from federation.flower.runner import RunNotFound, read_results, start_run, wait_for_run
from federation.flower.settings import FlowerSettings
from federation.hub_client import HubClient
from federation.schemas.auth import Role, TokenCreate
from federation.schemas.campaigns import (
    CampaignCreate,
    CampaignFailureCode,
    CampaignRead,
    CampaignStatus,
)
from federation.schemas.federated_run import FailureCode, RejectReason, RunOutcome
from federation.simulation import simulate_run
from hub.auth import service as auth_service
from hub.config import HubSettings
from hub.main import create_app
from tests.federation.superlink_chaos import (
    HubProcess,
    SuperLinkKill,
    kill_during_campaign,
    publish_parent,
    tiny_cmapss_export,
    wait_for_campaign,
)
from tests.hub import factories
from tests.plant_node.serving.sigkill import KillReport, prepare_node, run_kills, start_node

pytestmark = pytest.mark.slow

# C-MAPSS subsets as plant ids: the cmapss run reads them through baselines.load_plant_data,
# the toy runs read <data-dir>/<plant>.npz from each SuperNode's own directory.
PLANTS = ("FD001", "FD002", "FD003")
BASE_CONFIG: dict[str, Any] = {
    "baseline": "toy-linear",
    "strategy": "fedavg",
    "num-server-rounds": 2,
    "local-epochs": 1,
    "min-participants": 2,
    "round-timeout": 120.0,
    "node-wait-timeout": 10.0,
    "max-update-norm": 5.0,
}


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    root = tmp_path_factory.mktemp("flower")
    link_port, *node_ports = free_ports(1 + len(PLANTS))
    sites = []
    for plant, port in zip(PLANTS, node_ports, strict=True):
        write_toy_plant_data(root / "sites" / plant, plant)
        sites.append(PlantSite(plant, root / "sites" / plant, runtime_port=port))
    settings = FlowerSettings(var_dir=root / "var", superlink_port=link_port,
                              tls=True, node_auth=True)
    with LocalFederation(settings, sites) as fed:
        yield fed


@pytest.fixture(scope="module")
def parent_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny C-MAPSS FD001 model exported like a published baseline (FP32 only)."""
    return tiny_cmapss_export(tmp_path_factory.mktemp("parent"))


@pytest.fixture(scope="module")
def hub_campaign(
    federation: LocalFederation, parent_export: Path, sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HubClient, CampaignRead, float]]:
    """A real hub app (worker on) beside the SuperLink, and the campaign posted to it."""
    root = tmp_path_factory.mktemp("hub")
    shutil.copyfile(sqlite_template, root / "hub.db")
    settings = HubSettings(
        database_url=f"sqlite:///{root / 'hub.db'}", artifact_root=root / "artifacts",
        campaign_superlink=federation.settings.superlink_address,
        campaign_superlink_root_cert=federation.root_certificate,
        campaign_work_dir=root / "campaigns", campaign_poll_seconds=0.5,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        with app.state.session_factory() as session:
            for plant in PLANTS:
                factories.plant(session, plant)
            token = auth_service.create_token(
                session=session, token_in=TokenCreate(role=Role.ADMIN), actor="test"
            ).token
        hub = HubClient(client=client, token=token, retries=0)
        parent = publish_export(hub, parent_export)
        started = time.monotonic()
        campaign = hub.create_campaign(CampaignCreate(
            model=parent.model, parent_version_id=parent.version_id, recipe_id=parent.recipe_id,
            plants=list(PLANTS), strategy="fedprox", rounds=2, local_epochs=1,
            min_participants=2, personalize_epochs=1, round_timeout_seconds=120,
            max_samples_per_plant=300, max_units_per_plant=4,
        ))
        yield hub, campaign, started


def _wait_for_campaign(hub: HubClient, campaign_id: int, timeout: float) -> CampaignRead:
    deadline = time.monotonic() + timeout
    while True:
        campaign = hub.get_campaign(campaign_id)
        if campaign.status.final or time.monotonic() > deadline:
            return campaign
        time.sleep(0.5)


def _start(fed: LocalFederation, name: str, **overrides: Any) -> tuple[int, Path]:
    results = fed.settings.var_dir / "runs" / f"{name}.json"
    run_id = start_run(fed.control, run_config={**BASE_CONFIG, **overrides},
                       results_path=results, node_plants=fed.node_plants)
    return run_id, results


def _global_rmse(model_path: str) -> float:
    task = ToyLinearTask()
    with np.load(model_path) as f:
        weights = {k: f[k] for k in f.files}
    return float(np.mean([task.evaluate(weights, make_toy_plant_data(p))["rmse"] for p in PLANTS]))


def test_tls_and_node_auth_are_on(federation: LocalFederation) -> None:
    assert federation.tls is not None
    argv = federation.superlink.popen.args  # type: ignore[union-attr]
    assert "--enable-supernode-auth" in argv and "--insecure" not in argv
    assert sorted(federation.node_plants.values()) == list(PLANTS)
    assert {n.name for n in federation.control.list_nodes() if n.status == "online"} == set(PLANTS)


def test_hub_campaign_and_poisoned_runs(
    federation: LocalFederation,
    hub_campaign: tuple[HubClient, CampaignRead, float],
    tmp_path: Path,
) -> None:
    hub, posted, started = hub_campaign
    one_round = {"num-server-rounds": 1}
    runs = {
        "nan": _start(federation, "nan", **one_round,
                      **{"fault-plant": "FD002", "fault-mode": "nan"}),
        "scale100": _start(federation, "scale100", **one_round,
                           **{"fault-plant": "FD002", "fault-mode": "scale100"}),
    }
    # The clean reference: the same app and config, run in-process (no plant poisoned).
    clean, _ = simulate_run(
        {p: {"data-dir": str(federation.plants[i].data_dir)} for i, p in enumerate(PLANTS)},
        {**BASE_CONFIG, **one_round}, results_path=tmp_path / "clean.json",
    )

    states = {k: wait_for_run(federation.control, rid, timeout=300) for k, (rid, _) in runs.items()}
    results = {k: read_results(path) for k, (_, path) in runs.items()}
    campaign = _wait_for_campaign(hub, posted.id, timeout=300)
    wall = time.monotonic() - started

    # The campaign: run on Flower, rounds copied into the hub, models registered.
    assert campaign.status == CampaignStatus.SUCCEEDED, (campaign.failure_code,
                                                         campaign.failure_detail)
    assert campaign.flower_run_id and campaign.rounds_completed == 2
    assert campaign.participants == list(PLANTS)
    assert campaign.samples_per_plant == {p: 300 for p in PLANTS}
    assert [r.round for r in campaign.round_records] == [1, 2]
    for record in campaign.round_records:
        assert record.participants == list(PLANTS)
        assert set(record.train.per_plant) == set(record.evaluate.per_plant) == set(PLANTS)
        assert "rmse" in record.evaluate.aggregated and record.evaluate.aggregated["rmse"] > 0
        assert set(record.bytes_up_per_plant) == set(PLANTS) and record.bytes_total > 0
    version = hub.get_version(campaign.version_id)
    lineage = version.hyperparameters["federated"]
    assert version.parent_id == posted.parent_version_id and version.plant_id is None
    assert (lineage["campaign_id"], lineage["strategy"], lineage["rounds"]) == (
        posted.id, "fedprox", 2)
    assert lineage["participants"] == list(PLANTS) and lineage["started_from"] == "parent"
    assert lineage["samples_per_plant"] == {p: 300 for p in PLANTS}
    assert version.tags["campaign"] == str(posted.id) and "rmse" in version.metrics
    assert sorted(campaign.personalized_version_ids) == list(PLANTS)
    personal = hub.get_version(campaign.personalized_version_ids["FD002"])
    assert personal.plant_id == "FD002" and personal.parent_id == version.id
    assert personal.tags["plant"] == "FD002"
    assert personal.hyperparameters["federated"]["personalized_for"] == "FD002"
    # Both registered artifacts are OpenVINO exports the node-side runtime loads.
    from baselines.export.runtime import load_exported

    feature_states = {}
    for v in (version, personal):
        target = tmp_path / v.version
        hub.download_artifact(v.artifact_digest, tmp_path / f"{v.version}.tgz")
        with tarfile.open(tmp_path / f"{v.version}.tgz") as tar:
            tar.extractall(target, filter="data")
        exported = load_exported(target, "fp32")
        x = np.zeros((2, *exported.metadata["input"]["shape"][1:]), dtype=np.float32)
        assert np.all(np.isfinite(exported.predict(x)))
        assert exported.metadata["plant"] == (v.plant_id or "FD001")
        feature_states[v.plant_id] = exported.metadata["feature_state"]
    # FD002's copy normalizes with FD002's own statistics (six operating conditions), which
    # only travelled as aggregates; the global model keeps the parent's FD001 statistics.
    assert feature_states["FD002"] != feature_states[None]
    assert len(feature_states["FD002"]["centroids"]) == 6
    assert len(feature_states[None]["centroids"]) == 1
    print(f"\ncampaign wall {wall:.1f}s; rounds: " + "; ".join(
        f"r{r.round} {r.seconds:.1f}s up {r.bytes_up_per_plant} down {r.bytes_down_per_plant}"
        for r in campaign.round_records))

    # The poisoned runs: the bad plant is rejected, the model stays close to the clean one.
    assert all(s.succeeded for s in states.values()), states
    clean_rmse = _global_rmse(clean.model.path)
    for mode, reason in (("nan", RejectReason.NON_FINITE),
                         ("scale100", RejectReason.NORM_EXCEEDED)):
        poisoned = results[mode]
        assert {(r.plant_id, r.reason) for r in poisoned.rejections} == {("FD002", reason)}
        assert poisoned.model.lineage.participants == ["FD001", "FD003"]
        assert abs(_global_rmse(poisoned.model.path) - clean_rmse) <= 0.05 * clean_rmse


CHAOS_SEED = 18


@dataclass
class SuperLinkChaos:
    """The hub process and the campaign whose SuperLink and hub were SIGKILLed.

    ``line`` is the plant node that served a line replay meanwhile and was SIGKILLed twice
    (:func:`tests.plant_node.serving.sigkill.run_kills`); ``node_restarted`` says it served
    again afterwards.
    """

    hub: HubProcess
    kill: SuperLinkKill
    line: KillReport
    node_restarted: bool


@pytest.fixture(scope="module")
def superlink_chaos(
    federation: LocalFederation, parent_export: Path, sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SuperLinkChaos]:
    """SIGKILL the SuperLink (with its SuperExec and ServerApp) and the hub mid-campaign.

    Seeded moments (:func:`tests.federation.superlink_chaos.kill_during_campaign`). Flower
    declares the killed ServerApp's run failed only when its heartbeat lapses (2 x 30 s in
    flwr 1.41), so the campaign's outcome is checked by the module's last test, and the
    tests in between run meanwhile.
    """
    hub = HubProcess(tmp_path_factory.mktemp("chaos-hub"), federation, sqlite_template, PLANTS)
    hub.start()
    node_dir = prepare_node(tmp_path_factory.mktemp("chaos-node"))
    line: dict[str, KillReport] = {}
    # A plant node serves a line replay beside the campaign and is SIGKILLed twice, at
    # seeded moments, while the SuperLink and the hub die and come back.
    replay = threading.Thread(target=lambda: line.setdefault("report", run_kills(
        node_dir, kills=2, clients=2, window_s=(1.0, 3.0), seed=CHAOS_SEED)), daemon=True)
    try:
        parent = publish_parent(hub, parent_export)
        replay.start()
        kill = kill_during_campaign(
            federation, hub, parent, random.Random(CHAOS_SEED), plants=PLANTS)
        replay.join(300)
        node = start_node(node_dir, free_ports(1)[0])  # back after its last kill: ready
        node.terminate()
        node.wait(30)
        yield SuperLinkChaos(hub, kill, line["report"], node_restarted=True)
    finally:
        hub.stop()


def test_superlink_and_hub_come_back_after_sigkill(
    federation: LocalFederation, superlink_chaos: SuperLinkChaos
) -> None:
    hub, kill = superlink_chaos.hub, superlink_chaos.kill
    online = {n.node_id: n.name for n in federation.control.list_nodes() if n.status == "online"}

    run_id, path = kill.new_run
    new_run = wait_for_run(federation.control, run_id, timeout=120)  # before the next test's
    kill.phases["new_run_done"] = time.monotonic() - kill.clock

    # The same SuperNodes are back online (the SuperLink kept their registrations), a new
    # run completes, a run the SuperLink does not know is an error the hub can act on at
    # once, and the restarted hub serves and follows the campaign.
    assert online == federation.node_plants and sorted(online.values()) == list(PLANTS)
    assert all(p.is_running() for p in federation.supernodes.values())
    assert new_run.succeeded and read_results(path).status == RunOutcome.SUCCEEDED
    with pytest.raises(RunNotFound):
        federation.control.run_state(1)
    with hub.client() as client:
        assert [c.id for c in client.list_campaigns().items] == [kill.campaign_id]


def test_killed_supernode_does_not_hang_the_run(federation: LocalFederation) -> None:
    run_id, path = _start(
        federation, "dropout", **{"fault-plant": "FD003", "fault-mode": "stall",
                                  "fault-stall-seconds": 120.0, "round-timeout": 15.0}
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        result = read_results(path)
        if result is not None and result.rounds:  # round 1 has been sent out
            break
        time.sleep(0.5)
    time.sleep(3.0)  # FD003's ClientApp is now stalled inside training

    federation.kill_node("FD003")
    state = wait_for_run(federation.control, run_id, timeout=180)
    result = read_results(path)

    assert state.succeeded
    assert result.status == RunOutcome.SUCCEEDED
    assert result.model.lineage.participants == ["FD001", "FD002"]
    assert ("FD003", "train", 1) in {(d.plant_id, d.stage, d.round) for d in result.dropouts}


def test_run_fails_clearly_below_min_participation(federation: LocalFederation) -> None:
    run_id, path = _start(federation, "too-few", **{"min-participants": 3,
                                                   "round-timeout": 10.0})

    state = wait_for_run(federation.control, run_id, timeout=120)
    result = read_results(path)

    assert state.finished and not state.succeeded
    assert result.status == RunOutcome.FAILED
    assert result.failure.code == FailureCode.NOT_ENOUGH_PARTICIPANTS
    assert result.failure.round == 1
    assert "3 required" in result.failure.detail
    assert result.model is None


def test_superlink_kill_ends_the_campaign_with_a_reason(superlink_chaos: SuperLinkChaos) -> None:
    hub, kill = superlink_chaos.hub, superlink_chaos.kill
    with hub.client() as client:
        campaign = wait_for_campaign(client, kill.campaign_id, timeout=150)

    # The campaign ended within a bound of the kill, succeeded or failed with a code and a
    # reason: its run died with the SuperLink, and the hub says so instead of polling for ever.
    assert campaign.status.final and campaign.finished_at is not None, campaign.status
    # The line replay beside it: every prediction the node acknowledged survived its kills.
    line = superlink_chaos.line
    assert line.kills == 2 and line.acknowledged > 0, line
    assert line.acknowledged_lost == 0, line.lost_ids
    assert superlink_chaos.node_restarted
    outcome_s = (campaign.finished_at - kill.killed).total_seconds()
    assert outcome_s < 120
    if campaign.status == CampaignStatus.FAILED:
        assert campaign.failure_code in (CampaignFailureCode.RUN_LOST,
                                         CampaignFailureCode.SUPERLINK_UNREACHABLE), campaign
        assert campaign.failure_detail
    else:
        assert campaign.status == CampaignStatus.SUCCEEDED and campaign.version_id
    kill.phases["campaign_final"] = outcome_s
    print(f"\nSuperLink kill -> campaign {campaign.status.value} ({campaign.failure_code}: "
          f"{campaign.failure_detail}); after the kill (s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in kill.phases.items()))
