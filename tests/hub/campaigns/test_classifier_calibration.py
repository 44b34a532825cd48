"""An AI4I campaign in-process (real ServerApp and ClientApps on product lines L, M, H), then
the hub's export step: the classifier's calibration, which is not in the exchanged weights,
reaches the OpenVINO exports (the fleet's for the global model, each plant's for its copy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from federation.apps.protocol import CALIB_TEMPERATURE_KEY, CALIB_THRESHOLD_KEY
from federation.apps.tasks import get_task
from federation.schemas.federated_run import FederatedRunResult, RoundRecord, RunOutcome
from federation.simulation import simulate_run
from hub.campaigns import flows

PLANTS = ("L", "M", "H")


@pytest.fixture(scope="module")
def parent_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A briefly trained all-lines AI4I model exported like a published baseline (FP32)."""
    from baselines.export.convert import export_baseline
    from baselines.models.pipeline import train_baseline
    from baselines.recipes import ai4i_recipe

    recipe = ai4i_recipe()
    recipe = recipe.model_copy(
        update={
            "hyperparameters": recipe.hyperparameters.model_copy(
                update={"epochs": 2, "overrides": {}}
            )
        }
    )
    root = tmp_path_factory.mktemp("parent")
    trained = train_baseline("ai4i", None, recipe=recipe, root=root / "models", threads=1)
    export_baseline(trained, root / "export", int8=False, strict=False)
    return root / "export"


@pytest.fixture(scope="module")
def campaign(
    parent_export: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[FederatedRunResult, list[flows.ExportJob]]:
    """Two short FedAvg rounds from the parent plus personalization, exported as the hub does."""
    import torch

    torch.set_num_threads(1)
    paths = flows.CampaignPaths(tmp_path_factory.mktemp("campaign"))
    run_config: dict[str, Any] = {
        "baseline": "ai4i",
        "strategy": "fedavg",
        "num-server-rounds": 2,
        "local-epochs": 1,
        "learning-rate": 2e-3,
        "batch-size": 128,
        "seed": 7,
        "min-participants": 3,
        "max-samples-per-plant": 800,
        "personalize-epochs": 2,
        "round-timeout": 60.0,
        "node-wait-timeout": 1.0,
        "model-path": str(paths.model),
        "initial-weights-path": str(parent_export / flows.WEIGHTS_FILE),
    }
    result, error = simulate_run({p: {} for p in PLANTS}, run_config, results_path=paths.results)
    assert error is None and result is not None, error
    jobs = flows.export_jobs(result, paths, {"campaign_id": 1})
    flows.export_in_subprocess(jobs, parent_export, paths.root / "export-jobs.json")
    return result, jobs


def _held_out(plant: str) -> tuple[np.ndarray, np.ndarray]:
    """The plant's test split as its ClientApp loaded it (same process cache)."""
    from baselines.models.training import primary_target

    data = get_task("ai4i").load_data(plant, None, max_samples=None, seed=0)
    return data.x_test, np.asarray(primary_target(data.y_test))


@pytest.mark.slow  # training, and the export in its own process as the hub runs it (~20 s)
def test_global_export_carries_the_fleet_calibration(
    campaign: tuple[FederatedRunResult, list[flows.ExportJob]], parent_export: Path
) -> None:
    from baselines.export.runtime import load_exported, read_metadata
    from baselines.models import build_model, predict, set_weights
    from baselines.recipes import Recipe

    result, jobs = campaign
    assert result.status == RunOutcome.SUCCEEDED and result.rounds_completed == 2
    final = result.rounds[-1].evaluate.per_plant
    assert set(final) == set(PLANTS)
    total = sum(final[p].num_examples for p in PLANTS)
    fleet = {
        key: sum(final[p].num_examples * final[p].metrics[key] for p in PLANTS) / total
        for key in (CALIB_TEMPERATURE_KEY, CALIB_THRESHOLD_KEY)
    }
    # Every plant fitted its own calibration (the defaults are T = 1, t = 0.5).
    fitted = {
        (final[p].metrics[CALIB_TEMPERATURE_KEY], final[p].metrics[CALIB_THRESHOLD_KEY])
        for p in PLANTS
    }
    assert len(fitted) == 3 and (1.0, 0.5) not in fitted

    meta = read_metadata(jobs[0].out)
    assert meta["calibration"]["source"] == "campaign"
    assert meta["calibration"]["temperature"] == pytest.approx(fleet[CALIB_TEMPERATURE_KEY])
    assert meta["threshold"] == pytest.approx(fleet[CALIB_THRESHOLD_KEY])
    assert meta["threshold"] != read_metadata(parent_export)["threshold"]
    # The temperature is in the graph: OpenVINO matches torch scaled by the fleet temperature.
    recipe = Recipe.model_validate_json((parent_export / "recipe.json").read_text())
    model = build_model(recipe, (int(meta["input"]["shape"][1]),))
    with np.load(jobs[0].weights) as f:
        set_weights(model, [f[k] for k in f.files])
    model.calib_temperature.fill_(fleet[CALIB_TEMPERATURE_KEY])  # type: ignore[operator]
    x, _ = _held_out("M")
    got = load_exported(jobs[0].out).predict(x)
    assert np.abs(got - predict(model, x)).max() < 1e-4
    model.calib_temperature.fill_(1.0)  # type: ignore[operator]
    if abs(fleet[CALIB_TEMPERATURE_KEY] - 1.0) > 0.05:
        assert np.abs(got - predict(model, x)).max() > 1e-3


@pytest.mark.slow
def test_personalized_exports_score_what_their_plant_reported(
    campaign: tuple[FederatedRunResult, list[flows.ExportJob]],
) -> None:
    from baselines.export.runtime import load_exported
    from baselines.models import score_predictions

    result, jobs = campaign
    assert [m.plant_id for m in result.personalized] == sorted(PLANTS)
    lines = []
    for item, job in zip(result.personalized, jobs[1:], strict=True):
        assert item.calibration is not None
        exported = load_exported(job.out)
        meta = exported.metadata
        assert meta["plant"] == item.plant_id and meta["calibration"]["source"] == "campaign"
        assert meta["calibration"]["temperature"] == item.calibration[CALIB_TEMPERATURE_KEY]
        assert exported.threshold == item.calibration[CALIB_THRESHOLD_KEY]
        assert item.metrics_after[CALIB_THRESHOLD_KEY] == item.calibration[CALIB_THRESHOLD_KEY]
        # The plant's own held-out rows, normalized with the state shipped in the export.
        x, y = _held_out(item.plant_id)
        scored = score_predictions(meta["task"], y, exported.predict(x), exported.threshold)
        assert scored["f1"] == pytest.approx(item.metrics_after["f1"], abs=1e-6)
        assert scored["recall"] == pytest.approx(item.metrics_after["recall"], abs=1e-6)
        lines.append(
            f"{item.plant_id}: F1 {item.metrics_before['f1']:.3f} -> "
            f"{item.metrics_after['f1']:.3f} (T {meta['calibration']['temperature']:.2f},"
            f" t {exported.threshold:.3f})"
        )
    print("\npersonalization " + "; ".join(lines))


def test_only_the_final_round_calibrates_the_global_model() -> None:
    calib = {CALIB_TEMPERATURE_KEY: 1.5, CALIB_THRESHOLD_KEY: 0.3, "f1": 0.8}
    result = FederatedRunResult(
        baseline="ai4i",
        strategy="fedavg",
        rounds_planned=2,
        rounds_completed=2,
        min_participants=2,
        started_at="2026-01-01T00:00:00Z",
        rounds=[RoundRecord(round=1), RoundRecord(round=2)],
    )
    result.rounds[0].evaluate.aggregated = dict(calib)
    # Round 1's fit belongs to other weights; without the final round's, keep the parent's.
    assert flows.global_calibration(result) is None
    result.rounds[1].evaluate.aggregated = {**calib, CALIB_TEMPERATURE_KEY: 2.0}
    assert flows.global_calibration(result) == {"temperature": 2.0, "threshold": 0.3}
    assert flows.calibration_of({"rmse": 20.0}) is None  # a regressor has none
