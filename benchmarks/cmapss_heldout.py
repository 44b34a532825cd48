"""Held-out selection of C-MAPSS epochs / dropout / ensemble size (training units only).

The figures in the recipe's FD001 / FD003 comment come from this script; the official test
set is never read. Fold ``k`` holds out training units ``perm[20k:20k+20]`` (permutation
seeded 0), fits the features on the other 80 units and trains ``copies`` seeded copies as
``train_members`` does (copy ``i``: the i-th network built after seeding, trained with
``seed + i``). Each held-out unit is cut at 10 seeded random points, as the test units are,
and the last window of each cut is scored against ``min(RUL, cap)``. Prints the RMSE of each
copy and of the first-k ensemble.

Usage: ``python -m benchmarks.cmapss_heldout PLANT FOLD COPIES [EPOCHS] [DROPOUT]
[--lr LR] [--batch-size N] [--weight-decay WD]`` (unset: the recipe's value for the plant).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
import torch

from baselines import datasets
from baselines.features import cmapss as cf
from baselines.models.networks import build_network
from baselines.models.training import predict, seed_everything, train_local
from baselines.recipes import get_recipe

FOLD_UNITS = 20
CUTS_PER_UNIT = 10


def held_out_windows(
    held: pd.DataFrame, state: cf.CmapssFeatureState, fold: int
) -> tuple[np.ndarray, np.ndarray]:
    """Test-like inputs from held-out units: last windows of random cuts, and capped RUL."""
    rng = np.random.default_rng(1000 + fold)
    parts: list[pd.DataFrame] = []
    truth: list[int] = []
    for unit in sorted(set(held["unit"].tolist())):
        rows = held[held["unit"] == unit].sort_values("cycle")
        for cut in rng.integers(20, len(rows), size=CUTS_PER_UNIT):
            part = rows.iloc[:cut].copy()
            part["unit"] = len(parts) + 1
            parts.append(part)
            truth.append(min(len(rows) - cut, state.rul_cap))
    win = cf.windows(pd.concat(parts, ignore_index=True), state, every_cycle=False)
    return win.x, np.asarray(truth, dtype=np.float64)[win.unit - 1]


def main(argv: list[str]) -> None:
    """Train the copies of one fold and print held-out RMSE per copy and per ensemble."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cmapss_heldout")
    parser.add_argument("plant")
    parser.add_argument("fold", type=int)
    parser.add_argument("copies", type=int)
    parser.add_argument("epochs", type=int, nargs="?")
    parser.add_argument("dropout", type=float, nargs="?")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--weight-decay", type=float)
    args = parser.parse_args(argv)
    plant, fold, copies = args.plant, args.fold, args.copies
    recipe = get_recipe("cmapss")
    hp = recipe.hyperparameters_for(plant)
    given = {k: getattr(args, k) for k in ("epochs", "lr", "batch_size", "weight_decay")}
    hp = hp.model_copy(update={k: v for k, v in given.items() if v is not None})
    epochs = hp.epochs
    arch = dict(recipe.architecture)
    if args.dropout is not None:
        arch["dropout"] = args.dropout
    torch.set_num_threads(1)
    train = datasets.load_cmapss(plant, "train")
    perm = np.random.default_rng(0).permutation(np.unique(train["unit"].to_numpy()))
    held = train["unit"].isin(set(perm[FOLD_UNITS * fold : FOLD_UNITS * (fold + 1)].tolist()))
    rest = train[~held].reset_index(drop=True)
    config = cf.CmapssFeatureConfig.from_dict(
        {k: v for k, v in recipe.features.items() if k != "pipeline"}
    )
    state = cf.fit(rest, config)
    win = cf.windows(rest, state, every_cycle=True)
    y = cf.rul_targets(rest, state, win)
    x_ho, y_ho = held_out_windows(train[held].reset_index(drop=True), state, fold)
    seed_everything(hp.seed)
    nets = [build_network(arch, win.x.shape[1:], rul_scale=state.rul_cap) for _ in range(copies)]
    preds: list[np.ndarray] = []
    for i, net in enumerate(nets):
        train_local(net, win.x, y, epochs=epochs, lr=hp.lr, batch_size=hp.batch_size,
                    seed=hp.seed + i, weight_decay=hp.weight_decay)
        preds.append(predict(net, x_ho).astype(np.float64))
        one = float(np.sqrt(np.mean((preds[-1] - y_ho) ** 2)))
        ens = float(np.sqrt(np.mean((np.mean(preds, axis=0) - y_ho) ** 2)))
        print(f"{plant} fold {fold} epochs {epochs} dropout {arch['dropout']} lr {hp.lr} "
              f"batch {hp.batch_size} wd {hp.weight_decay} copy {i + 1}: "
              f"rmse {one:.3f}, ensemble of {i + 1}: {ens:.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
