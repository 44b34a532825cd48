"""Centralized training of a baseline for one plant, with on-disk caching by fingerprint.

``train_baseline`` loads the plant's data through the contract and feature pipeline, trains the
recipe's network with fixed seeds, calibrates the classifier, scores the test split and writes
``model.pt`` + ``metadata.json`` under ``<root>/<baseline>/<plant>/``. A directory whose
metadata carries the same training fingerprint is reused instead of retrained.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from baselines import metrics as m
from baselines.features import state_from_dict
from baselines.models.training import (
    build_model,
    calibrate,
    calibrate_logits,
    evaluate,
    predict,
    predict_logits,
    primary_target,
    train_members,
)
from baselines.plants import PlantData, load_plant_data
from baselines.recipes import Baseline, Recipe, get_recipe
from baselines.recipes.schema import Hyperparameters
from baselines.splits import stratified_folds
from baselines.typing import NDArray

ALL_LINES = "all"
MODEL_FILE = "model.pt"
METADATA_FILE = "metadata.json"

OUTPUTS: dict[Baseline, dict[str, str]] = {
    Baseline.CMAPSS: {
        "name": "rul",
        "unit": "cycles",
        "semantics": "remaining useful life after the window's last cycle, in operating cycles",
    },
    Baseline.AI4I: {
        "name": "failure_probability",
        "unit": "probability",
        "semantics": "calibrated probability of machine failure; alert when >= threshold",
    },
}


EVALUATION: dict[Baseline, str] = {
    Baseline.CMAPSS: (
        "last window of each official test unit vs RUL_FD00x capped at rul_cap (the reference's "
        "protocol); rmse_uncapped / phm08_score_uncapped use the raw RUL"
    ),
    Baseline.AI4I: "stratified held-out split; F1 at the calibrated threshold; ECE over 15 bins",
}


def score_test(
    model: nn.Module, data: PlantData, recipe: Recipe, plant: str | None
) -> dict[str, Any]:
    """Score a model on the plant's test split (plus uncapped RUL or recall per failure mode)."""
    metrics: dict[str, Any] = evaluate(model, data.x_test, data.y_test)
    if data.baseline is Baseline.CMAPSS:
        raw = data.extra["test_rul_uncapped"]
        pred = predict(model, data.x_test)
        metrics["rmse_uncapped"] = m.rmse(raw, pred)
        metrics["phm08_score_uncapped"] = m.phm08_score(raw, pred)
    else:
        metrics["recall_by_mode"] = recall_by_mode(data, model)
    return metrics


def _gates(recipe: Recipe, metrics: dict[str, Any], plant: str | None) -> dict[str, bool]:
    return recipe.gates_pass({k: v for k, v in metrics.items() if isinstance(v, float)}, plant)


@dataclass
class TrainedBaseline:
    """A trained model with its data, metrics and metadata (``metadata.json`` content)."""

    model: nn.Module
    data: PlantData
    metadata: dict[str, Any]
    directory: Path | None = None
    cached: bool = False


def with_epochs(recipe: Recipe, epochs: int | None) -> Recipe:
    """Return the recipe with every plant's epoch count replaced (demo-sized training)."""
    if epochs is None:
        return recipe
    hp = recipe.hyperparameters
    overrides = {k: {**v, "epochs": epochs} for k, v in hp.overrides.items()}
    new_hp = hp.model_copy(update={"epochs": epochs, "overrides": overrides})
    return recipe.model_copy(update={"hyperparameters": new_hp})


def plant_key(baseline: Baseline, plant: str | None) -> str:
    """Directory name of a plant's model (``all`` for the all-lines AI4I model)."""
    return plant if plant is not None else ALL_LINES


def recall_by_mode(data: PlantData, model: nn.Module) -> dict[str, float]:
    """AI4I: share of test failures of each mode that the model flags at its threshold."""
    modes = data.extra["test_failure_modes"]
    flagged = predict(model, data.x_test) >= float(torch.as_tensor(model.calib_threshold))
    out: dict[str, float] = {}
    for i, name in enumerate(data.extra["failure_modes"]):
        mask = modes[:, i] == 1
        out[name] = float(flagged[mask].mean()) if mask.any() else float("nan")
    return out


def _fit(
    recipe: Recipe, hp: Hyperparameters, x: NDArray, y: NDArray
) -> tuple[nn.Module, dict[str, float]]:
    """Build the recipe's network and train it on ``(x, y)``; returns it and its train metrics."""
    model = build_model(recipe, tuple(x.shape[1:]), seed=hp.seed, ensemble=hp.ensemble)
    metrics = train_members(
        model,
        x,
        y,
        epochs=hp.epochs,
        lr=hp.lr,
        batch_size=hp.batch_size,
        seed=hp.seed,
        weight_decay=hp.weight_decay,
        aux_weight=hp.aux_weight,
    )
    return model, metrics


def out_of_fold_logits(
    recipe: Recipe, hp: Hyperparameters, x: NDArray, y: NDArray, folds: int
) -> NDArray:
    """Logits of every row from a model of the recipe trained on the other stratified folds.

    The served model is trained on all rows; its temperature and threshold come from these
    held-out logits, since one validation split of ~55 failures sets a noisy threshold.
    """
    fold = stratified_folds(primary_target(y), folds, recipe.split.seed)
    z: NDArray | None = None
    for k in range(folds):
        model, _ = _fit(recipe, hp, x[fold != k], y[fold != k])
        part = predict_logits(model, x[fold == k])  # type: ignore[arg-type]
        z = np.zeros((len(x), part.shape[1])) if z is None else z
        z[fold == k] = part
    assert z is not None
    return z


def train_baseline(
    baseline: str | Baseline,
    plant: str | None,
    *,
    recipe: Recipe | None = None,
    root: Path | None = None,
    force: bool = False,
    max_units: int | None = None,
    threads: int | None = None,
) -> TrainedBaseline:
    """Train (or load from cache) one baseline model.

    Parameters
    ----------
    baseline
        ``"cmapss"`` or ``"ai4i"``.
    plant
        C-MAPSS subset, or an AI4I line; ``None`` trains AI4I on all lines.
    recipe
        Recipe to follow; the standard one by default.
    root
        Where to write ``<baseline>/<plant>/``; nothing is written when ``None``.
    force
        Retrain even when a model with the same fingerprint exists.
    max_units
        C-MAPSS only: restrict to the first units (tests).
    threads
        Torch intra-op threads; the recipe's value by default.

    Returns
    -------
    TrainedBaseline
        The model (eval mode), its data and metadata.
    """
    b = Baseline(baseline)
    recipe = recipe or get_recipe(b)
    data = load_plant_data(b, plant, recipe=recipe, max_units=max_units)
    directory = root / b.value / plant_key(b, plant) if root is not None else None
    if directory is not None and not force:
        cached = load_trained(directory, data=data, expect_fingerprint=data.fingerprint)
        if cached is not None:
            # Re-score: the evaluation protocol may have changed since the model was trained.
            fresh = score_test(cached.model, data, recipe, plant)
            if fresh != cached.metadata["metrics"]:
                cached.metadata["metrics"] = fresh
                cached.metadata["gates"] = _gates(recipe, fresh, plant)
                save_trained(directory, cached.model, cached.metadata)
            return cached
    hp = recipe.hyperparameters_for(plant)
    torch.set_num_threads(threads or hp.threads)
    folds = int(recipe.calibration.get("folds", 0))
    x_fit, y_fit = data.x_train, data.y_train
    if folds > 1:
        x_fit = np.concatenate([data.x_train, data.x_val])
        y_fit = np.concatenate([data.y_train, data.y_val])
    started = time.perf_counter()
    model, train_metrics = _fit(recipe, hp, x_fit, y_fit)
    calibration: dict[str, float] = {}
    if model.task == "failure_classification":
        if folds > 1:
            z = out_of_fold_logits(recipe, hp, x_fit, y_fit, folds)
            calibration = {**calibrate_logits(model, z, y_fit), "folds": float(folds)}  # type: ignore[arg-type]
        else:
            calibration = calibrate(model, data.x_val, data.y_val)  # type: ignore[arg-type]
    train_seconds = time.perf_counter() - started
    metrics = score_test(model, data, recipe, plant)
    metadata: dict[str, Any] = {
        "baseline": b.value,
        "plant": plant,
        "recipe_id": recipe.recipe_id,
        "recipe_digest": recipe.for_plant(plant).digest(),
        "recipe": recipe.for_plant(plant).to_dict(),
        "fingerprint": data.fingerprint,
        "quarantined_rows": data.quarantined_rows,
        "feature_state": data.feature_state.to_dict(),
        "input_shape": [None, *data.input_shape],
        "output": OUTPUTS[b],
        "threshold": float(getattr(model, "calib_threshold", torch.tensor(float("nan")))),
        "calibration": calibration,
        "train": {
            **train_metrics,
            "train_seconds": train_seconds,
            "threads": threads or hp.threads,
        },
        "metrics": metrics,
        "gates": recipe.gates_pass(
            {k: v for k, v in metrics.items() if isinstance(v, float)}, plant
        ),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    if directory is not None:
        save_trained(directory, model, metadata)
    return TrainedBaseline(model=model, data=data, metadata=metadata, directory=directory)


def save_trained(directory: Path, model: nn.Module, metadata: dict[str, Any]) -> None:
    """Write ``model.pt`` (state dict) and ``metadata.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / MODEL_FILE)
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")


def load_trained(
    directory: Path,
    *,
    data: PlantData | None = None,
    expect_fingerprint: str | None = None,
) -> TrainedBaseline | None:
    """Load a saved model; ``None`` if absent or trained on other rows or another recipe."""
    meta_path = directory / METADATA_FILE
    if not meta_path.exists() or not (directory / MODEL_FILE).exists():
        return None
    metadata = json.loads(meta_path.read_text())
    if expect_fingerprint is not None and metadata.get("fingerprint") != expect_fingerprint:
        return None
    recipe = Recipe.model_validate(metadata["recipe"])
    if data is None:
        state = state_from_dict(metadata["feature_state"])
        data = load_plant_data(
            recipe.baseline, metadata["plant"], recipe=recipe, feature_state=state
        )
    model = build_model(recipe, tuple(metadata["input_shape"][1:]))
    model.load_state_dict(torch.load(directory / MODEL_FILE, weights_only=True))
    model.eval()
    return TrainedBaseline(
        model=model, data=data, metadata=metadata, directory=directory, cached=True
    )


def holdout_targets(data: PlantData) -> np.ndarray:
    """Return the served target of the test split (machine failure, or RUL)."""
    return np.asarray(primary_target(data.y_test))


__all__ = [
    "ALL_LINES",
    "METADATA_FILE",
    "MODEL_FILE",
    "OUTPUTS",
    "TrainedBaseline",
    "load_trained",
    "plant_key",
    "recall_by_mode",
    "save_trained",
    "holdout_targets",
    "train_baseline",
    "with_epochs",
]
