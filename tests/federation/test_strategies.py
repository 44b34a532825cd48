"""Guarded strategies in-process: the real ServerApp and ClientApp, a Grid without network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from federation.apps.tasks import ToyLinearTask, make_toy_plant_data, write_toy_plant_data
from federation.flower.results import RunRecorder
from federation.schemas.federated_run import FailureCode, RejectReason, RunOutcome
from federation.simulation import simulate_run
from federation.strategies import StrategyName, build_strategy

PLANTS = ("plant-a", "plant-b", "plant-c")


def _run(
    tmp_path: Path, dead: set[str] | None = None, offline: set[str] | None = None, **overrides: Any
) -> tuple[Any, Any]:
    run_config: dict[str, Any] = {
        "baseline": "toy-linear", "strategy": "fedavg", "num-server-rounds": 2,
        "min-participants": 2, "round-timeout": 1.0, "node-wait-timeout": 1.0,
        "max-update-norm": 5.0, **overrides,
    }
    plants = {}
    for plant in PLANTS:
        write_toy_plant_data(tmp_path / "data", plant)
        plants[plant] = {"data-dir": str(tmp_path / "data")}
    return simulate_run(plants, run_config, results_path=tmp_path / "run.json",
                        dead=dead, offline=offline)


def _global_rmse(model_path: str) -> float:
    task = ToyLinearTask()
    with np.load(model_path) as f:
        weights = {k: f[k] for k in f.files}
    return float(np.mean([
        task.evaluate(weights, make_toy_plant_data(p))["rmse"]
        for p in ("plant-a", "plant-b", "plant-c")
    ]))


@pytest.mark.parametrize("strategy", [s.value for s in StrategyName])
def test_every_strategy_completes_and_records_lineage(tmp_path: Path, strategy: str) -> None:
    result, error = _run(tmp_path, strategy=strategy)

    assert error is None
    assert result.status == RunOutcome.SUCCEEDED
    assert result.rounds_completed == 2
    assert result.model.lineage.participants == ["plant-a", "plant-b", "plant-c"]
    assert result.model.lineage.samples_per_plant == {
        "plant-a": 300, "plant-b": 300, "plant-c": 300
    }
    assert result.model.lineage.strategy == strategy
    round_1 = result.rounds[0]
    assert set(round_1.evaluate.per_plant) == {"plant-a", "plant-b", "plant-c"}
    assert "rmse" in round_1.evaluate.aggregated
    assert set(round_1.bytes_down_per_plant) == set(round_1.bytes_up_per_plant) == set(PLANTS)
    assert round_1.bytes_total == sum(round_1.bytes_up_per_plant.values()) + sum(
        round_1.bytes_down_per_plant.values()
    ) > 0
    assert Path(result.model.path).exists()
    assert Path(result.model.path).with_suffix(".lineage.json").exists()


@pytest.mark.parametrize("mode, reason", [("nan", RejectReason.NON_FINITE),
                                          ("scale100", RejectReason.NORM_EXCEEDED)])
def test_poisoned_plant_is_rejected_and_the_model_stays_close(
    tmp_path: Path, mode: str, reason: RejectReason
) -> None:
    clean, _ = _run(tmp_path / "clean")
    poisoned, error = _run(tmp_path / "poisoned", **{"fault-plant": "plant-b", "fault-mode": mode})

    assert error is None
    assert {(r.plant_id, r.reason) for r in poisoned.rejections} == {("plant-b", reason)}
    assert [r.round for r in poisoned.rejections] == [1, 2]
    assert poisoned.model.lineage.participants == ["plant-a", "plant-c"]
    clean_rmse = _global_rmse(clean.model.path)
    assert abs(_global_rmse(poisoned.model.path) - clean_rmse) <= 0.05 * clean_rmse


def test_without_the_norm_bound_a_scaled_update_wrecks_fedavg(tmp_path: Path) -> None:
    clean, _ = _run(tmp_path / "clean")
    poisoned, _ = _run(tmp_path / "p", **{"fault-plant": "plant-b", "fault-mode": "scale100",
                                         "max-update-norm": 0.0})

    assert poisoned.rejections == []
    assert _global_rmse(poisoned.model.path) > 2 * _global_rmse(clean.model.path)


def test_dropout_above_min_participation_continues(tmp_path: Path) -> None:
    result, error = _run(tmp_path, dead={"plant-c"})

    assert error is None
    assert result.status == RunOutcome.SUCCEEDED
    assert result.model.lineage.participants == ["plant-a", "plant-b"]
    assert {(d.round, d.stage, d.node_id) for d in result.dropouts} == {(1, "train", 103),
                                                                         (2, "train", 103)}


def test_dropout_below_min_participation_fails_with_a_clear_status(tmp_path: Path) -> None:
    result, error = _run(tmp_path, dead={"plant-b", "plant-c"})

    assert error is not None
    assert result.status == RunOutcome.FAILED
    assert result.failure.code == FailureCode.NOT_ENOUGH_PARTICIPANTS
    assert result.failure.round == 1
    assert "1 valid update(s) from 3 sampled plant(s), 2 required" in result.failure.detail


def test_too_few_connected_nodes_fails_after_the_wait(tmp_path: Path) -> None:
    result, error = _run(tmp_path, offline={"plant-b", "plant-c"})

    assert error is not None
    assert result.failure.code == FailureCode.NOT_ENOUGH_PARTICIPANTS
    assert "1 plant(s) connected" in result.failure.detail


def test_client_side_dp_clips_and_adds_noise(tmp_path: Path) -> None:
    result, error = _run(tmp_path, **{"dp-noise-multiplier": 0.1, "dp-clipping-norm": 1.0,
                                      "min-participants": 3})

    assert error is None
    assert result.status == RunOutcome.SUCCEEDED


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        build_strategy("fedsgd", recorder=RunRecorder.start(None, baseline="x", strategy="x",
                                                            rounds_planned=1, min_participants=1),
                       min_participants=1)


def test_cmapss_baseline_trains_through_the_baselines_api(tmp_path: Path) -> None:
    run_config: dict[str, Any] = {
        "baseline": "cmapss", "strategy": "fedprox", "num-server-rounds": 1,
        "min-participants": 2, "round-timeout": 1.0, "node-wait-timeout": 1.0,
        "max-samples-per-plant": 200, "max-units-per-plant": 3, "learning-rate": 0.002,
        "batch-size": 64,
    }

    result, error = simulate_run({"FD001": {}, "FD003": {"max-units": 2}}, run_config,
                                 results_path=tmp_path / "run.json")

    assert error is None
    assert result.status == RunOutcome.SUCCEEDED
    assert result.model.lineage.samples_per_plant == {"FD001": 200, "FD003": 200}
    assert set(result.rounds[0].evaluate.per_plant["FD001"].metrics) >= {"rmse", "loss"}
    assert result.rounds[0].evaluate.per_plant["FD001"].num_examples == 3  # one per test unit
    assert result.rounds[0].evaluate.per_plant["FD003"].num_examples == 2  # node config wins
    from baselines.models import build_model, weight_names
    from baselines.recipes import get_recipe

    # Every tensor the recipe's network exchanges (names do not depend on the input width).
    expected = weight_names(build_model(get_recipe("cmapss"), (30, 14)))
    with np.load(result.model.path) as f:
        assert sorted(f.files) == sorted(expected)


def test_a_cmapss_campaign_from_an_ensemble_parent_federates_its_first_copy(
    tmp_path: Path,
) -> None:
    from baselines.models import build_model, get_weights, weight_names
    from federation.apps.run_settings import RunSettings
    from federation.apps.server_app import _initial_weights
    from federation.apps.tasks import BaselineTask

    # Prepare: a published FD001 / FD003 baseline averages copies of the recipe's network.
    task = BaselineTask("cmapss")
    parent = build_model(task.recipe, task.input_shape(), ensemble=2)
    single = build_model(task.recipe, task.input_shape())  # the same seed: copy 0's weights
    path = tmp_path / "parent.npz"
    np.savez(path, **dict(zip(weight_names(parent), get_weights(parent), strict=True)))

    # Execute
    start = _initial_weights(RunSettings(baseline="cmapss", initial_weights_path=path))
    result, error = simulate_run(
        {"FD001": {}, "FD003": {}},
        {"baseline": "cmapss", "strategy": "fedavg", "num-server-rounds": 1,
         "min-participants": 2, "round-timeout": 5.0, "node-wait-timeout": 1.0,
         "max-samples-per-plant": 200, "max-units-per-plant": 3, "batch-size": 64,
         "initial-weights-path": str(path)},
        results_path=tmp_path / "run.json",
    )

    # Assert: one network's weights start the run, are exchanged and saved.
    assert list(start) == weight_names(single)
    for got, want in zip(start.values(), get_weights(single), strict=True):
        np.testing.assert_array_equal(got, want)
    assert error is None and result.status == RunOutcome.SUCCEEDED
    with np.load(result.model.path) as f:
        assert f.files == weight_names(single)


def test_run_starts_from_the_parent_weights(tmp_path: Path) -> None:
    parent = tmp_path / "parent.npz"
    np.savez(parent, weight=np.full(8, 0.5, dtype=np.float32), bias=np.ones(1, np.float32))

    result, error = _run(tmp_path, **{"initial-weights-path": str(parent),
                                      "num-server-rounds": 1})

    assert error is None
    sent = result.rounds[0]
    assert sent.participants == ["plant-a", "plant-b", "plant-c"]
    assert result.model.lineage.run_config["initial-weights-path"] == str(parent)


def test_personalization_saves_one_model_per_plant(tmp_path: Path) -> None:
    result, error = _run(tmp_path, **{"personalize-epochs": 2, "num-server-rounds": 1})

    assert error is None
    assert [m.plant_id for m in result.personalized] == list(PLANTS)
    for model in result.personalized:
        assert Path(model.path).exists() and model.path != result.model.path
        assert model.num_examples == 300
        assert model.metrics_after["rmse"] < model.metrics_before["rmse"]


def _model(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def test_fedavgm_without_momentum_is_fedavg(tmp_path: Path) -> None:
    plain, _ = _run(tmp_path / "avg")
    sgd, error = _run(tmp_path / "avgm", strategy="fedavgm",
                      **{"server-momentum": 0.0, "server-learning-rate": 1.0})

    assert error is None
    for name, weights in _model(plain.model.path).items():
        np.testing.assert_allclose(_model(sgd.model.path)[name], weights, atol=1e-6)


@pytest.mark.parametrize("strategy", ["fedavgm", "fedadam"])
def test_server_optimizers_move_away_from_fedavg_and_keep_validation(
    tmp_path: Path, strategy: str
) -> None:
    plain, _ = _run(tmp_path / "avg")
    result, error = _run(tmp_path / strategy, strategy=strategy,
                         **{"fault-plant": "plant-b", "fault-mode": "nan"})

    assert error is None
    assert {(r.plant_id, r.reason) for r in result.rejections} == {
        ("plant-b", RejectReason.NON_FINITE)
    }
    moved = _model(result.model.path)
    assert all(np.all(np.isfinite(w)) for w in moved.values())
    assert any(not np.allclose(moved[k], w) for k, w in _model(plain.model.path).items())


def test_fedavgm_steps_from_the_model_sent_each_round(tmp_path: Path) -> None:
    from flwr.app import ConfigRecord

    from federation.apps.arrays import to_record
    from federation.simulation import simulation_grid

    strategy, guard = build_strategy(
        "fedavgm", recorder=RunRecorder.start(None, baseline="x", strategy="fedavgm",
                                              rounds_planned=2, min_participants=1),
        min_participants=1,
    )
    grid = simulation_grid({"plant-a": {}}, {"baseline": "toy-linear"})
    for server_round, value in ((1, 0.0), (2, 1.0)):
        sent = to_record({"w": np.full(3, value, dtype=np.float32)})
        list(strategy.configure_train(server_round, sent, ConfigRecord({}), grid))  # type: ignore[arg-type]
        # A DP wrapper or a resumed run changes the model between rounds; the step must
        # start from what the plants were actually sent.
        assert guard.current_arrays is sent  # type: ignore[attr-defined]


@pytest.mark.parametrize("strategy", ["fedavgm", "fedadam"])
def test_dp_is_refused_with_a_server_optimizer(strategy: str) -> None:
    with pytest.raises(ValueError, match="client-side DP cannot be combined"):
        build_strategy(strategy, recorder=RunRecorder.start(None, baseline="x", strategy="x",
                                                            rounds_planned=1, min_participants=1),
                       min_participants=1, dp_noise_multiplier=0.1, dp_clipping_norm=1.0)


def test_campaign_refuses_dp_with_a_server_optimizer() -> None:
    from pydantic import ValidationError

    from federation.schemas.campaigns import CampaignCreate

    body: dict[str, Any] = {
        "model": "cmapss-fd001", "parent_version_id": 1, "recipe_id": 1, "plants": ["a", "b"],
        "strategy": "fedavgm", "rounds": 2, "local_epochs": 1, "min_participants": 2,
        "privacy": {"clipping_norm": 1.0, "noise_multiplier": 0.5},
    }
    with pytest.raises(ValidationError, match="cannot be combined with fedavgm"):
        CampaignCreate.model_validate(body)
    assert CampaignCreate.model_validate({**body, "privacy": None}).strategy == "fedavgm"
