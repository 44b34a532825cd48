"""Does federation pay off? C-MAPSS FD001-FD004 as four plants, each on its official test set.

For every plant: local-only, centralized (pooled, reference), FedAvg, FedProx and FedAvg
followed by local personalization; plus a new plant that has only the first 20 training
units of FD001. Federated runs use the real ServerApp/ClientApp and strategies through
:mod:`federation.simulation` (same code as a deployed run, minus the network); the
numbers are test RMSE in cycles. Results go to ``benchmarks/results/federation.json``.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from federation.apps.tasks import BaselineTask, PlantArrays, Weights
from federation.simulation import simulate_run

PLANTS = ("FD001", "FD002", "FD003", "FD004")
NEW_PLANT = "FD001"
FD001_TRAIN_UNITS = 100
RESULTS_PATH = Path("benchmarks/results/federation.json")


@dataclass(frozen=True)
class EvaluationBudget:
    """How much training each arm gets (equal local epochs for fairness)."""

    max_windows: int  # training windows per plant (seeded subset of all units)
    local_epochs: int  # local-only and centralized
    rounds: int  # federated rounds, one local epoch each
    personal_epochs: int  # local fine-tuning after the federated rounds
    new_plant_units: int = 20
    learning_rate: float = 0.002
    personal_learning_rate: float = 0.0005
    batch_size: int = 256
    proximal_mu: float = 0.01
    seed: int = 7
    # Campaigns' default (run config personalize-head-only); the other scope is reported beside.
    personal_head_only: bool = False


FULL = EvaluationBudget(max_windows=2000, local_epochs=6, rounds=6, personal_epochs=2)
QUICK = EvaluationBudget(max_windows=400, local_epochs=2, rounds=2, personal_epochs=1)


def _rmse(task: BaselineTask, weights: Weights, data: PlantArrays) -> float:
    return round(task.evaluate(weights, data)["rmse"], 3)


def _fit(
    task: BaselineTask,
    weights: Weights,
    data: PlantArrays,
    epochs: int,
    lr: float,
    b: EvaluationBudget,
    *,
    head_only: bool = False,
) -> Weights:
    new, _ = task.fit(weights, data, epochs=epochs, learning_rate=lr,
                      batch_size=b.batch_size, proximal_mu=0.0, seed=b.seed, head_only=head_only)
    return new


def _pool(parts: list[PlantArrays]) -> PlantArrays:
    return PlantArrays(
        "pooled",
        np.concatenate([p.x_train for p in parts]),
        np.concatenate([p.y_train for p in parts]),
        np.zeros((0, *parts[0].x_test.shape[1:]), dtype=np.float32),
        np.zeros(0, dtype=np.float32),
    )


def _federate(
    strategy: str, plants: dict[str, dict[str, Any]], b: EvaluationBudget, work: Path
) -> tuple[Weights, dict[str, Any]]:
    run_config = {
        "baseline": "cmapss", "strategy": strategy, "num-server-rounds": b.rounds,
        "local-epochs": 1, "learning-rate": b.learning_rate, "batch-size": b.batch_size,
        "proximal-mu": b.proximal_mu, "min-participants": len(plants),
        "max-samples-per-plant": b.max_windows, "seed": b.seed,
        "node-wait-timeout": 1.0, "round-timeout": 1.0,
    }
    result, error = simulate_run(plants, run_config, results_path=work / f"{strategy}.json")
    if error is not None or result is None or result.model is None:
        raise RuntimeError(f"{strategy} run failed: {error}")
    with np.load(result.model.path) as f:
        weights = {k: f[k] for k in f.files}
    rounds = result.rounds
    stats = {
        "round_seconds": round(float(np.mean([r.seconds for r in rounds])), 2),
        "bytes_per_round_per_plant": int(np.mean([
            r.bytes_down_per_plant[p] + r.bytes_up_per_plant[p]
            for r in rounds for p in r.participants
        ])),
    }
    return weights, stats


def evaluate_federation(budget: EvaluationBudget, out_path: Path = RESULTS_PATH) -> dict[str, Any]:
    """Run every arm, write the results JSON, and return it.

    Parameters
    ----------
    budget : EvaluationBudget
        Training budget (``FULL`` for the published numbers, ``QUICK`` for smoke runs).
    out_path : Path
        Where to write the JSON document.

    Returns
    -------
    dict[str, Any]
        The document written to ``out_path``.
    """
    started = time.perf_counter()
    task = BaselineTask("cmapss")
    b = budget
    data = {p: task.load_data(p, None, max_samples=b.max_windows, seed=b.seed) for p in PLANTS}
    init = task.initial_weights(b.seed)
    table: dict[str, dict[str, float]] = {p: {} for p in PLANTS}

    for p in PLANTS:
        table[p]["local"] = _rmse(task, _fit(task, init, data[p], b.local_epochs,
                                             b.learning_rate, b), data[p])
    central = _fit(task, init, _pool(list(data.values())), b.local_epochs, b.learning_rate, b)
    for p in PLANTS:
        table[p]["centralized"] = _rmse(task, central, data[p])

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        everyone: dict[str, dict[str, Any]] = {p: {} for p in PLANTS}
        fedavg, stats = _federate("fedavg", everyone, b, work)
        fedprox, _ = _federate("fedprox", everyone, b, work / "prox")
        # The default scope is the headline arm; the other scope is reported beside it.
        other = "fedavg_personalized_all" if b.personal_head_only else "fedavg_personalized_head"
        for p in PLANTS:
            table[p]["fedavg"] = _rmse(task, fedavg, data[p])
            table[p]["fedprox"] = _rmse(task, fedprox, data[p])
            for arm, head_only in (("fedavg_personalized", b.personal_head_only),
                                   (other, not b.personal_head_only)):
                personal = _fit(task, fedavg, data[p], b.personal_epochs,
                                b.personal_learning_rate, b, head_only=head_only)
                table[p][arm] = _rmse(task, personal, data[p])

        # The budget caps every plant at max_windows; the newcomer keeps its share of that
        # cap (20 of FD001's 100 units -> 20 %), or it would not be short of data at all.
        new_windows = max(1, b.max_windows * b.new_plant_units // FD001_TRAIN_UNITS)
        newcomer = task.load_data(NEW_PLANT, None, max_samples=new_windows, seed=b.seed,
                                  max_units=b.new_plant_units)
        new_test = data[NEW_PLANT]  # the full official FD001 test set
        new_eval = PlantArrays(NEW_PLANT, newcomer.x_train, newcomer.y_train,
                               new_test.x_test, new_test.y_test)
        new_local = _fit(task, init, new_eval, b.local_epochs, b.learning_rate, b)
        with_new = {NEW_PLANT: {"max-units": b.new_plant_units, "max-samples": new_windows},
                    **{p: {} for p in PLANTS if p != NEW_PLANT}}
        new_global, _ = _federate("fedavg", with_new, b, work / "new")
        new_personal = _fit(task, new_global, new_eval, b.personal_epochs,
                            b.personal_learning_rate, b, head_only=b.personal_head_only)

    local_mean = float(np.mean([table[p]["local"] for p in PLANTS]))
    personal_mean = float(np.mean([table[p]["fedavg_personalized"] for p in PLANTS]))
    new_local_rmse = _rmse(task, new_local, new_eval)
    new_personal_rmse = _rmse(task, new_personal, new_eval)
    doc: dict[str, Any] = {
        "plants": table,
        "new_plant": {"units": b.new_plant_units, "windows": new_windows,
                      "local": new_local_rmse,
                      "fedavg_personalized": new_personal_rmse},
        **stats,
        "targets": {
            "personalized_mean_le_local_mean": personal_mean <= local_mean,
            "no_plant_worse_than_local_by_5pct": all(
                table[p]["fedavg_personalized"] <= 1.05 * table[p]["local"] for p in PLANTS
            ),
            "new_plant_20pct_better": new_personal_rmse <= 0.8 * new_local_rmse,
        },
        "means": {"local": round(local_mean, 3), "fedavg_personalized": round(personal_mean, 3)},
        "budget": asdict(b),
        "notes": (
            "Test RMSE (cycles) on each subset's official test set (last window per unit). "
            "Federated arms run the real ServerApp/ClientApp in one process "
            "(federation.simulation); round_seconds is that in-process time, without "
            "network. Training windows are a seeded subset of max_windows per plant; the "
            "new plant keeps units/100 of that cap, drawn from its first units."
        ),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


def markdown_table(doc: dict[str, Any]) -> str:
    """Render the per-plant RMSE table for the README."""
    arms = ("local", "centralized", "fedavg", "fedprox", "fedavg_personalized",
            *(a for a in ("fedavg_personalized_head", "fedavg_personalized_all")
              if a in next(iter(doc["plants"].values()))))
    lines = ["| plant | " + " | ".join(arms) + " |", "|---|" + "---:|" * len(arms)]
    for plant, row in doc["plants"].items():
        lines.append(f"| {plant} | " + " | ".join(f"{row[a]:.2f}" for a in arms) + " |")
    new = doc["new_plant"]
    lines.append(
        f"| new plant ({new['units']} units of FD001) | {new['local']:.2f} | | | | "
        f"{new['fedavg_personalized']:.2f} |" + " |" * (len(arms) - 5)
    )
    return "\n".join(lines)
