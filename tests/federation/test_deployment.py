"""Real ``flower-superlink`` + 3 ``flower-supernode`` processes on loopback, TLS + node auth.

One federation serves every test in this module (in order): a 2-round C-MAPSS FedProx
run (the baselines' training API) side by side with two poisoned runs (NaN, x100 update)
whose model is compared with the clean run of the same app in-process, then a SuperNode
is killed mid-run, then a run that cannot meet its minimum participation. Each plant's
SuperNode sees only its own data directory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from federation.apps.tasks import ToyLinearTask, make_toy_plant_data, write_toy_plant_data
from federation.flower.deployment import LocalFederation, PlantSite
from federation.flower.processes import free_ports
from federation.flower.runner import read_results, start_run, wait_for_run
from federation.flower.settings import FlowerSettings
from federation.schemas.federated_run import FailureCode, RejectReason, RunOutcome
from federation.simulation import simulate_run

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


def test_cmapss_run_and_poisoned_runs(federation: LocalFederation, tmp_path: Path) -> None:
    one_round = {"num-server-rounds": 1}
    runs = {
        "cmapss": _start(federation, "cmapss", **{
            "baseline": "cmapss", "strategy": "fedprox", "max-samples-per-plant": 300,
            "max-units-per-plant": 4, "learning-rate": 0.002, "batch-size": 64,
            "max-update-norm": 0.0, "campaign-id": "c-1", "parent-version": "cmapss@1"}),
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

    assert all(s.succeeded for s in states.values()), states
    cmapss = results["cmapss"]
    lineage = cmapss.model.lineage
    assert cmapss.status == RunOutcome.SUCCEEDED and cmapss.rounds_completed == 2
    assert (lineage.baseline, lineage.strategy, lineage.rounds) == ("cmapss", "fedprox", 2)
    assert (lineage.campaign_id, lineage.parent_version) == ("c-1", "cmapss@1")
    assert lineage.participants == list(PLANTS)
    assert lineage.samples_per_plant == {p: 300 for p in PLANTS}
    for record in cmapss.rounds:
        assert record.participants == list(PLANTS)
        assert set(record.train.per_plant) == set(record.evaluate.per_plant) == set(PLANTS)
        assert "rmse" in record.evaluate.aggregated
        assert set(record.bytes_up_per_plant) == set(PLANTS) and record.bytes_total > 0
    assert Path(cmapss.model.path).exists()
    clean_rmse = _global_rmse(clean.model.path)
    for mode, reason in (("nan", RejectReason.NON_FINITE),
                         ("scale100", RejectReason.NORM_EXCEEDED)):
        poisoned = results[mode]
        assert {(r.plant_id, r.reason) for r in poisoned.rejections} == {("FD002", reason)}
        assert poisoned.model.lineage.participants == ["FD001", "FD003"]
        assert abs(_global_rmse(poisoned.model.path) - clean_rmse) <= 0.05 * clean_rmse


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
