"""The training API shared by centralized training and the Flower ClientApp.

Weights travel as a list of numpy arrays in ``state_dict`` order, without the ``calib_``
buffers; ``train_local`` adds the FedProx proximal term when ``proximal_mu > 0``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from baselines import metrics as m
from baselines.models.networks import CALIB_PREFIX, FailureClassifier, RulEnsemble, build_network
from baselines.recipes import Recipe
from baselines.typing import NDArray

_EVAL_BATCH = 4096


def seed_everything(seed: int) -> None:
    """Seed torch and numpy's legacy global generator."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def build_model(
    recipe: Recipe,
    input_shape: tuple[int, ...],
    *,
    seed: int | None = None,
    ensemble: int | None = None,
) -> nn.Module:
    """Build the recipe's network for samples of ``input_shape`` with seeded initial weights.

    Parameters
    ----------
    recipe
        Recipe whose ``architecture`` section is used.
    input_shape
        One sample's shape: ``(window, features)`` for C-MAPSS, ``(features,)`` for AI4I.
    seed
        Initialization seed; the recipe's ``hyperparameters.seed`` by default.
    ensemble
        Number of copies averaged by a :class:`RulEnsemble`; the recipe's
        ``hyperparameters.ensemble`` by default. Federation always builds one (``1``).

    Returns
    -------
    torch.nn.Module
        A network in eval mode. The first copy of an ensemble is initialized exactly as a
        single network with the same seed.

    Raises
    ------
    ValueError
        If an ensemble is asked of a network that is not an RUL regressor.
    """
    seed_everything(recipe.hyperparameters.seed if seed is None else seed)
    rul_scale = float(recipe.features.get("rul_cap", 125.0))
    n = recipe.hyperparameters.ensemble if ensemble is None else ensemble
    nets = [
        build_network(recipe.architecture, tuple(input_shape), rul_scale=rul_scale)
        for _ in range(n)
    ]
    if n == 1:
        return nets[0].eval()
    if recipe.task != "rul_regression":
        raise ValueError(f"an ensemble of {n} is only built for RUL regression, not {recipe.task}")
    return RulEnsemble(nets).eval()


def weight_names(model: nn.Module) -> list[str]:
    """Names of the exchanged tensors, in the order ``get_weights`` returns them."""
    return [k for k in model.state_dict() if not k.split(".")[-1].startswith(CALIB_PREFIX)]


def head_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters that form the prediction head (what personalization tunes).

    The CNN regressor names its head ``head`` (a :class:`RulEnsemble`: each copy's); the
    classifier's head is each member's last layer. Everything else (convolutions, hidden
    layers) is the shared representation.
    """
    names = [n for n, _ in model.named_parameters()]
    head = [n for n in names if "head" in n.split(".")[:-1]]
    if head:
        return head
    last: dict[str, int] = {}  # member prefix -> index of its last layer
    for n in names:
        *prefix, layer, _ = n.split(".")
        if layer.isdigit():
            key = ".".join(prefix)
            last[key] = max(last.get(key, -1), int(layer))
    return [n for n in names
            if (parts := n.split("."))[-2].isdigit()
            and last.get(".".join(parts[:-2])) == int(parts[-2])]


def get_weights(model: nn.Module) -> list[NDArray]:
    """Return the model weights (parameters and non-calibration buffers) as numpy arrays."""
    state = model.state_dict()
    return [state[k].detach().cpu().numpy().copy() for k in weight_names(model)]


def set_weights(model: nn.Module, weights: list[NDArray]) -> None:
    """Load weights produced by ``get_weights`` (same architecture) into ``model``.

    Raises
    ------
    ValueError
        If the number or shapes of the arrays do not match the model.
    """
    names = weight_names(model)
    if len(names) != len(weights):
        raise ValueError(f"expected {len(names)} arrays, got {len(weights)}")
    state = model.state_dict()
    new = {}
    for name, arr in zip(names, weights, strict=True):
        if tuple(state[name].shape) != tuple(np.shape(arr)):
            raise ValueError(f"{name}: shape {np.shape(arr)} != {tuple(state[name].shape)}")
        new[name] = torch.as_tensor(np.asarray(arr), dtype=state[name].dtype)
    model.load_state_dict(new, strict=False)


def primary_target(y: NDArray) -> NDArray:
    """Return the served target: ``y`` itself, or its first column when auxiliary labels follow."""
    arr = np.asarray(y)
    return arr[:, 0] if arr.ndim == 2 else arr


def _member_loss(
    model: FailureClassifier, z: torch.Tensor, yb: torch.Tensor, aux_weight: float
) -> torch.Tensor:
    """Loss of one member's logits ``z`` ``(B, 1 + n_aux)``."""
    if yb.ndim == 2 and model.n_aux and aux_weight > 0:
        per_target = nn.functional.binary_cross_entropy_with_logits(
            z, yb[:, : 1 + model.n_aux], reduction="none"
        ).mean(dim=0)
        return per_target[0] + aux_weight * per_target[1:].sum()
    target = yb[:, 0] if yb.ndim == 2 else yb
    if not model.score_heads:
        return nn.functional.binary_cross_entropy_with_logits(z[:, 0], target)
    prob = 1.0 - torch.sigmoid(-z[:, model.score_heads]).prod(dim=1)
    return nn.functional.binary_cross_entropy(prob.clamp(1e-7, 1 - 1e-7), target)


def _loss(
    model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, aux_weight: float = 0.0
) -> torch.Tensor:
    if isinstance(model, FailureClassifier):
        # Each ensemble member learns on its own; members are averaged only when served.
        return sum(
            (_member_loss(model, z, yb, aux_weight) for z in model.member_logits(xb)),
            torch.zeros(()),
        )
    scale = torch.as_tensor(model.rul_scale)
    target = yb[:, 0] if yb.ndim == 2 else yb
    return nn.functional.mse_loss(model(xb) / scale, target / scale)


def train_local(
    model: nn.Module,
    x: NDArray,
    y: NDArray,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    proximal_mu: float = 0.0,
    global_weights: list[NDArray] | None = None,
    weight_decay: float = 0.0,
    cosine: bool = True,
    aux_weight: float = 1.0,
    head_only: bool = False,
) -> dict[str, float]:
    """Train ``model`` in place with Adam; the same call serves centralized and federated rounds.

    Parameters
    ----------
    model
        A network from ``build_model``.
    x, y
        Float32 inputs and targets: RUL in cycles ``(n,)``, or 0/1 failure labels ``(n,)`` or
        ``(n, 1 + k)`` (machine failure, then the failure modes as auxiliary targets).
    epochs, lr, batch_size, seed
        Schedule; ``seed`` fixes the shuffling and dropout, so equal inputs give equal weights.
    proximal_mu
        FedProx coefficient: adds ``mu / 2 * ||w - w_global||^2`` over the trainable weights.
    global_weights
        The round's global weights (``get_weights`` order); defaults to the model's weights at
        the start of the call, which is what a client receives in a round.
    weight_decay
        Adam weight decay.
    cosine
        Anneal the learning rate to zero over the call with a cosine schedule.
    aux_weight
        Weight of each auxiliary failure-mode loss when ``y`` carries mode columns.
    head_only
        Tune only :func:`head_parameter_names` (plant personalization: the federated
        representation stays shared, the plant adapts the last layers to its own data).

    Returns
    -------
    dict
        ``loss`` (mean training loss of the last epoch, without the proximal term),
        ``num_examples``, ``epochs`` and ``seconds``.
    """
    started = time.perf_counter()
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    xt = torch.as_tensor(np.array(x, dtype=np.float32))
    yt = torch.as_tensor(np.array(y, dtype=np.float32))
    n = len(xt)
    params = dict(model.named_parameters())
    anchors: dict[str, torch.Tensor] = {}
    if proximal_mu > 0:
        names = weight_names(model)
        source = global_weights if global_weights is not None else get_weights(model)
        anchors = {
            k: torch.as_tensor(np.asarray(w), dtype=torch.float32)
            for k, w in zip(names, source, strict=True)
            if k in params
        }
    head = set(head_parameter_names(model)) if head_only else set(params)
    frozen = [p for n, p in params.items() if n not in head and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    optimizer = torch.optim.Adam(
        [p for n, p in params.items() if n in head], lr=lr, weight_decay=weight_decay
    )
    steps_per_epoch = max(1, -(-n // batch_size))
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
        if cosine
        else None
    )
    model.train()
    last_loss = float("nan")
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = _loss(model, xt[idx], yt[idx], aux_weight)
            total += float(loss.detach()) * len(idx)
            if anchors:
                prox = sum(((params[k] - a) ** 2).sum() for k, a in anchors.items())
                loss = loss + (proximal_mu / 2.0) * prox
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        last_loss = total / max(n, 1)
    for p in frozen:
        p.requires_grad_(True)
    model.eval()
    return {
        "loss": last_loss,
        "num_examples": float(n),
        "epochs": float(epochs),
        "seconds": time.perf_counter() - started,
    }


def train_members(
    model: nn.Module, x: NDArray, y: NDArray, *, seed: int, **kwargs: Any
) -> dict[str, float]:
    """``train_local`` for a single network or, one copy after another, a :class:`RulEnsemble`.

    Copy ``i`` trains with ``seed + i`` (its own shuffling and dropout), so copy 0 is exactly
    the single network of the same recipe. Returns the copies' mean last-epoch ``loss``, the
    total ``seconds`` and ``members``.
    """
    copies = list(model.ensemble) if isinstance(model, RulEnsemble) else [model]
    runs = [train_local(c, x, y, seed=seed + i, **kwargs) for i, c in enumerate(copies)]
    model.eval()
    return {
        **runs[0],
        "loss": float(np.mean([r["loss"] for r in runs])),
        "seconds": float(sum(r["seconds"] for r in runs)),
        "members": float(len(runs)),
    }


@torch.no_grad()
def predict(model: nn.Module, x: NDArray) -> NDArray:
    """Run the network in eval mode; returns RUL cycles or calibrated probabilities, float32."""
    model.eval()
    xt = torch.as_tensor(np.array(x, dtype=np.float32))
    outs = [model(xt[i : i + _EVAL_BATCH]) for i in range(0, len(xt), _EVAL_BATCH)]
    return torch.cat(outs).numpy() if outs else np.zeros(0, dtype=np.float32)


@torch.no_grad()
def predict_logits(model: FailureClassifier, x: NDArray) -> NDArray:
    """Uncalibrated logits of every head of the failure classifier, ``(n, 1 + n_aux)``."""
    model.eval()
    xt = torch.as_tensor(np.array(x, dtype=np.float32))
    return model.all_logits(xt).numpy()


def score_predictions(
    task: str, y: NDArray, pred: NDArray, threshold: float = 0.5
) -> dict[str, float]:
    """Metrics of predictions from any runtime (torch, OpenVINO) for a task.

    Regression: ``rmse``, ``mae``, ``phm08_score``. Classification: ``f1``, ``precision``,
    ``recall``, ``pr_auc``, ``ece``, ``brier`` at ``threshold``. Both add ``num_examples``.
    """
    y = np.asarray(y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if task == "rul_regression":
        return {
            "rmse": m.rmse(y, pred),
            "mae": m.mae(y, pred),
            "phm08_score": m.phm08_score(y, pred),
            "num_examples": float(len(y)),
        }
    hat = pred >= threshold
    precision, recall = m.precision_recall(y, hat)
    return {
        "f1": m.f1_score(y, hat),
        "precision": precision,
        "recall": recall,
        "pr_auc": m.pr_auc(y, pred),
        "ece": m.expected_calibration_error(y, pred),
        "brier": float(np.mean((pred - y) ** 2)) if len(y) else float("nan"),
        "threshold": float(threshold),
        "num_examples": float(len(y)),
    }


def evaluate(model: nn.Module, x: NDArray, y: NDArray) -> dict[str, float]:
    """Score ``model`` on ``(x, y)``; also returns ``loss`` (the served target's loss).

    The classifier is scored at its calibrated decision threshold; only the first column of a
    2-D ``y`` (machine failure) is scored.
    """
    y1 = primary_target(y)
    pred = predict(model, x)
    threshold = float(model.calib_threshold) if isinstance(model, FailureClassifier) else 0.5
    out = score_predictions(str(model.task), y1, pred, threshold)
    if len(x):
        with torch.no_grad():
            xt = torch.as_tensor(np.array(x, dtype=np.float32))
            yt = torch.as_tensor(np.array(y1, dtype=np.float32))
            out["loss"] = float(_loss(model.eval(), xt, yt))
    return out


def _served_probability(model: FailureClassifier, z: NDArray, t: float) -> NDArray:
    """Numpy twin of ``FailureClassifier.probability`` on precomputed logits ``z``."""
    if not model.score_heads:
        return np.asarray(1.0 / (1.0 + np.exp(-z[:, 0] / t)))
    return np.asarray(1.0 - np.prod(1.0 / (1.0 + np.exp(z[:, model.score_heads] / t)), axis=1))


def calibrate(model: FailureClassifier, x_val: NDArray, y_val: NDArray) -> dict[str, float]:
    """Fit the temperature (min NLL) and the max-F1 threshold on validation rows, in place.

    Returns
    -------
    dict
        ``temperature``, ``threshold`` and the validation ``ece`` before and after.
    """
    return calibrate_logits(model, predict_logits(model, x_val), y_val)


def calibrate_logits(model: FailureClassifier, z: NDArray, y_val: NDArray) -> dict[str, float]:
    """:func:`calibrate` on precomputed held-out logits ``z`` ``(n, 1 + n_aux)``.

    The logits may come from other models of the same recipe (out-of-fold predictions of a
    cross-fit), which gives the threshold several times the positives of one validation split.
    """
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(primary_target(y_val), dtype=np.float64)

    def nll(t: float) -> float:
        p = np.clip(_served_probability(model, z, t), 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 401))
    temperature = float(grid[int(np.argmin([nll(t) for t in grid]))])
    before = m.expected_calibration_error(y, _served_probability(model, z, 1.0))
    prob = _served_probability(model, z, temperature)
    threshold = m.best_f1_threshold(y, prob)
    model.calib_temperature.fill_(temperature)
    model.calib_threshold.fill_(threshold)
    return {
        "temperature": temperature,
        "threshold": threshold,
        "ece_before": before,
        "ece_after": m.expected_calibration_error(y, prob),
    }


__all__ = [
    "build_model",
    "calibrate",
    "calibrate_logits",
    "evaluate",
    "get_weights",
    "predict",
    "predict_logits",
    "primary_target",
    "score_predictions",
    "seed_everything",
    "set_weights",
    "train_local",
    "train_members",
    "weight_names",
]
