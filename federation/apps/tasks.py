"""What a plant trains: a task registry (baseline name -> model + data adapter).

The ClientApp and ServerApp speak only this small interface, so the training code of a
baseline plugs in with a few lines. ``toy-linear`` is a numpy linear regressor over
per-plant ``.npz`` files; it keeps the Flower tests fast and torch-free.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from federation.apps.protocol import CALIB_TEMPERATURE_KEY, CALIB_THRESHOLD_KEY

FloatArray = npt.NDArray[np.float32]
Weights = dict[str, npt.NDArray[np.floating]]


@dataclass(frozen=True)
class PlantArrays:
    """One plant's training and test arrays, already through the feature pipeline."""

    plant_id: str
    x_train: FloatArray
    y_train: FloatArray
    x_test: FloatArray
    y_test: FloatArray
    #: The plant's fitted feature normalization (aggregate statistics, JSON-able), if any.
    feature_state: dict[str, Any] | None = None
    #: The plant's validation split (a classifier's calibration is fitted on it), if any.
    x_val: FloatArray | None = None
    y_val: FloatArray | None = None


class FederatedTask(Protocol):
    """What the Flower apps need from a baseline."""

    name: str
    metric_name: str

    def initial_weights(self, seed: int) -> Weights:
        """Return the starting global weights (named arrays)."""
        ...

    def load_data(
        self,
        plant_id: str,
        data_dir: Path | None,
        *,
        max_samples: int | None,
        seed: int,
        max_units: int | None = None,
    ) -> PlantArrays:
        """Load ``plant_id``'s own data (only that plant's files).

        ``max_units`` limits run-to-failure baselines to their first units (a plant with
        little history); tasks without units ignore it.
        """
        ...

    def fit(
        self,
        weights: Weights,
        data: PlantArrays,
        *,
        epochs: int,
        learning_rate: float,
        batch_size: int,
        proximal_mu: float,
        seed: int,
        head_only: bool = False,
    ) -> tuple[Weights, dict[str, float]]:
        """Train locally from ``weights``; return new weights and training metrics.

        ``head_only`` tunes only the prediction head (personalization after the rounds).
        """
        ...

    def evaluate(self, weights: Weights, data: PlantArrays) -> dict[str, float]:
        """Return ``loss`` and ``metric_name`` of ``weights`` on the plant's test set.

        A classifier is first calibrated on the plant's validation split and also returns
        that calibration (``protocol.CALIB_TEMPERATURE_KEY`` / ``CALIB_THRESHOLD_KEY``).
        """
        ...


# ------------------------------------------------------------------ toy-linear
TOY_FEATURES = 8


def _plant_seed(plant_id: str) -> int:
    return int.from_bytes(hashlib.sha256(plant_id.encode()).digest()[:4], "little")


def make_toy_plant_data(plant_id: str, n_train: int = 300, n_test: int = 100) -> PlantArrays:
    """Synthesize a plant's data: a shared linear signal plus a plant-specific offset."""
    rng = np.random.default_rng(_plant_seed(plant_id))
    w_true = np.linspace(-1.0, 1.0, TOY_FEATURES)
    shift = rng.normal(0.0, 0.05)

    def draw(n: int) -> tuple[FloatArray, FloatArray]:
        x = rng.normal(0.0, 1.0, size=(n, TOY_FEATURES)).astype(np.float32)
        y = (x @ w_true + 0.5 + shift + rng.normal(0.0, 0.1, size=n)).astype(np.float32)
        return x, y

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    return PlantArrays(plant_id, x_train, y_train, x_test, y_test)


def write_toy_plant_data(data_dir: Path, plant_id: str, **kwargs: int) -> Path:
    """Write ``make_toy_plant_data`` to ``<data_dir>/<plant_id>.npz`` (a plant's local file)."""
    data = make_toy_plant_data(plant_id, **kwargs)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{plant_id}.npz"
    np.savez(path, x_train=data.x_train, y_train=data.y_train,
             x_test=data.x_test, y_test=data.y_test)
    return path


class ToyLinearTask:
    """Linear regression trained by mini-batch SGD in numpy (MSE loss, RMSE metric)."""

    name = "toy-linear"
    metric_name = "rmse"

    def initial_weights(self, seed: int) -> Weights:
        """Small random weights, the same for a given seed."""
        rng = np.random.default_rng(seed)
        return {
            "weight": rng.normal(0.0, 0.01, size=TOY_FEATURES).astype(np.float32),
            "bias": np.zeros(1, dtype=np.float32),
        }

    def load_data(
        self,
        plant_id: str,
        data_dir: Path | None,
        *,
        max_samples: int | None,
        seed: int,
        max_units: int | None = None,
    ) -> PlantArrays:
        """Read ``<data_dir>/<plant_id>.npz``; synthesize it when no directory is given."""
        if data_dir is None:
            data = make_toy_plant_data(plant_id)
        else:
            with np.load(data_dir / f"{plant_id}.npz") as f:
                data = PlantArrays(plant_id, f["x_train"], f["y_train"], f["x_test"], f["y_test"])
        if max_samples:
            data = PlantArrays(plant_id, data.x_train[:max_samples], data.y_train[:max_samples],
                               data.x_test, data.y_test)
        return data

    def fit(
        self,
        weights: Weights,
        data: PlantArrays,
        *,
        epochs: int,
        learning_rate: float,
        batch_size: int,
        proximal_mu: float,
        seed: int,
        head_only: bool = False,
    ) -> tuple[Weights, dict[str, float]]:
        """SGD on MSE plus ``mu/2 * ||w - w_global||^2`` (FedProx); the linear model is all head."""
        w = weights["weight"].astype(np.float64).copy()
        b = weights["bias"].astype(np.float64).copy()
        w0, b0 = w.copy(), b.copy()
        x = data.x_train.astype(np.float64)
        y = data.y_train.astype(np.float64)
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(len(x))
            for start in range(0, len(x), batch_size):
                idx = order[start : start + batch_size]
                err = x[idx] @ w + b[0] - y[idx]
                grad_w = 2.0 * x[idx].T @ err / len(idx) + proximal_mu * (w - w0)
                grad_b = 2.0 * err.mean() + proximal_mu * (b[0] - b0[0])
                w -= learning_rate * grad_w
                b[0] -= learning_rate * grad_b
        loss = float(np.mean((x @ w + b[0] - y) ** 2))
        new = {"weight": w.astype(np.float32), "bias": b.astype(np.float32)}
        return new, {"train-loss": loss}

    def evaluate(self, weights: Weights, data: PlantArrays) -> dict[str, float]:
        """MSE loss and RMSE on the plant's test split."""
        pred = data.x_test @ weights["weight"] + weights["bias"][0]
        mse = float(np.mean((pred - data.y_test) ** 2))
        return {"loss": mse, "rmse": float(np.sqrt(mse))}


# ------------------------------------------------------------- baselines
@functools.lru_cache(maxsize=16)
def _load_baseline_plant(
    baseline: str, plant_id: str, max_units: int | None, data_dir: Path | None = None
) -> Any:
    # A ClientApp process serves one message, so this only pays off in-process
    # (simulation, evaluation), where every round would otherwise re-read the plant.
    from baselines.datasets import cmapss_subset_in
    from baselines.models import load_plant_data

    subset = cmapss_subset_in(data_dir) if baseline == "cmapss" and data_dir else None
    if subset is not None:
        # A plant node's data directory holds its own history; the subset is read off the
        # files there, so plant ids need not be C-MAPSS subset names.
        return load_plant_data(baseline, subset, max_units=max_units, data_dir=data_dir)
    return load_plant_data(baseline, plant_id, max_units=max_units)


class BaselineTask:
    """A Millwright baseline (``cmapss`` RUL, ``ai4i`` failure) through ``baselines.models``.

    Data comes from ``baselines.models.load_plant_data`` (contract check, the plant's own
    feature state, windows); training is ``train_local`` (Adam, FedProx term when
    ``proximal_mu > 0``). torch is imported by ``baselines.models`` only when a method runs.
    """

    def __init__(self, baseline: str) -> None:
        from baselines.recipes import Baseline, get_recipe

        self.baseline = Baseline(baseline)
        self.recipe = get_recipe(self.baseline)
        self.name = self.baseline.value
        self.metric_name = "rmse" if self.baseline is Baseline.CMAPSS else "f1"

    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape, known from the recipe alone (the server has no data)."""
        f = self.recipe.features
        if self.name == "cmapss":
            return (int(f["window"]), len(f["sensor_candidates"]))
        return (len(f["numeric"]) + len(f["derived"]) + len(f["categorical"]["type"]),)

    def _model(self, weights: Weights | None, seed: int) -> Any:
        from baselines.models import build_model, set_weights

        # One copy even where the published baseline is an ensemble (``ensemble``
        # hyperparameter): federated rounds exchange one network's weights.
        model = build_model(self.recipe, self.input_shape(), seed=seed, ensemble=1)
        if weights is not None:
            set_weights(model, list(weights.values()))
        return model

    def _named(self, model: Any) -> Weights:
        from baselines.models import get_weights, weight_names

        return dict(zip(weight_names(model), get_weights(model), strict=True))

    def initial_weights(self, seed: int) -> Weights:
        """Return the recipe's network weights, initialized with ``seed``."""
        return self._named(self._model(None, seed))

    def load_data(
        self,
        plant_id: str,
        data_dir: Path | None,
        *,
        max_samples: int | None,
        seed: int,
        max_units: int | None = None,
    ) -> PlantArrays:
        """Load the plant's own rows through the shared feature pipeline (state fitted here).

        ``max_samples`` keeps a seeded random subset of that many training windows;
        ``max_units`` reads only C-MAPSS units ``1..max_units`` (train and test). Loaded
        arrays are cached per process.
        """
        local = data_dir if data_dir is not None and data_dir.is_dir() else None
        data = _load_baseline_plant(self.name, plant_id, max_units, local)
        x, y = data.x_train, data.y_train
        if max_samples and len(x) > max_samples:
            keep = np.random.default_rng(seed).choice(len(x), max_samples, replace=False)
            x, y = x[np.sort(keep)], y[np.sort(keep)]
        return PlantArrays(
            plant_id, x, y, data.x_test, data.y_test, feature_state=data.feature_state.to_dict(),
            x_val=data.x_val, y_val=data.y_val,
        )

    def fit(
        self,
        weights: Weights,
        data: PlantArrays,
        *,
        epochs: int,
        learning_rate: float,
        batch_size: int,
        proximal_mu: float,
        seed: int,
        head_only: bool = False,
    ) -> tuple[Weights, dict[str, float]]:
        """``baselines.models.train_local`` from the global weights."""
        from baselines.models import train_local

        model = self._model(weights, seed)
        out = train_local(
            model, data.x_train, data.y_train, epochs=epochs, lr=learning_rate,
            batch_size=batch_size, seed=seed, proximal_mu=proximal_mu,
            global_weights=list(weights.values()), head_only=head_only,
        )
        return self._named(model), {"train-loss": float(out["loss"])}

    def evaluate(self, weights: Weights, data: PlantArrays) -> dict[str, float]:
        """``baselines.models.evaluate`` on the plant's test split.

        The classifier's calibration (temperature, decision threshold) is not part of the
        exchanged weights, so it is fitted here on the plant's validation split first, as
        centralized training does: the F1 reported is the one a deployed model would get.
        The fitted values are returned too; aggregated over plants (example-weighted, the
        MetricRecord default) they calibrate the global model, and a personalized model
        ships with its plant's own.
        """
        from baselines.models import calibrate, evaluate
        from baselines.models.training import primary_target

        model = self._model(weights, 0)
        classifier = getattr(model, "task", "") == "failure_classification"
        # Without a validation failure there is nothing to fit: keep T = 1, t = 0.5 (still
        # reported, so every plant's metric record has the same keys).
        if classifier and data.x_val is not None and data.y_val is not None:
            if primary_target(data.y_val).any():
                calibrate(model, data.x_val, data.y_val)
        out = evaluate(model, data.x_test, data.y_test)
        metrics = {k: float(v) for k, v in out.items() if k != "num_examples" and np.isfinite(v)}
        if not classifier:
            return metrics
        # Flower aggregates only metric records with equal keys, and PR-AUC is undefined on a
        # split without failures (AI4I line H's test split has none): it is left out, and the
        # share of failures says when an F1 of 0 only means there was nothing to find.
        metrics.pop("pr_auc", None)
        y_test = primary_target(data.y_test)
        return {
            **metrics,
            "positive-rate": float(np.mean(y_test)) if len(y_test) else 0.0,
            CALIB_TEMPERATURE_KEY: float(model.calib_temperature),
            CALIB_THRESHOLD_KEY: float(model.calib_threshold),
        }


TASKS: dict[str, Callable[[], FederatedTask]] = {
    ToyLinearTask.name: ToyLinearTask,
    "cmapss": lambda: BaselineTask("cmapss"),
    "ai4i": lambda: BaselineTask("ai4i"),
}


def get_task(name: str) -> FederatedTask:
    """Return the task registered as ``name``.

    Raises
    ------
    ValueError
        If no task has that name.
    """
    try:
        return TASKS[name]()
    except KeyError:
        raise ValueError(f"unknown baseline task {name!r} (known: {', '.join(TASKS)})") from None
