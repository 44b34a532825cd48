"""Per-plant training data through the shared feature pipelines (numpy/pandas, no torch).

A plant is one C-MAPSS subset (``FD001``..``FD004``) or one AI4I product line (``L``, ``M``,
``H``). ``load_plant_data`` is what centralized training, the Flower ClientApp and the benchmarks
call: raw rows -> data contract (violating rows are quarantined and counted) -> feature state
(fitted on the plant's training rows unless one is given) -> arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from baselines import datasets
from baselines.features import ai4i as ai4i_features
from baselines.features import cmapss as cmapss_features
from baselines.features.ai4i import Ai4iFeatureState
from baselines.features.cmapss import CmapssFeatureConfig, CmapssFeatureState
from baselines.fingerprint import training_fingerprint
from baselines.recipes import Baseline, Recipe, get_recipe
from baselines.splits import stratified_holdout
from baselines.typing import FloatArray, IntArray

FeatureState = CmapssFeatureState | Ai4iFeatureState


@dataclass(frozen=True)
class PlantData:
    """Arrays of one plant, ready for ``baselines.models.train_local`` / ``evaluate``.

    ``x_*`` are float32; C-MAPSS inputs are ``(n, window, features)`` with RUL targets in
    cycles, AI4I inputs are ``(n, features)`` with 0/1 labels: machine failure in column 0,
    followed by the recipe's auxiliary failure-mode targets (TWF, HDF, PWF, OSF, RNF) when the
    architecture lists them. ``train_local`` and ``evaluate`` accept both shapes. The validation
    arrays are empty when the split protocol has no validation share.
    """

    baseline: Baseline
    plant_id: str | None
    x_train: FloatArray
    y_train: FloatArray
    x_val: FloatArray
    y_val: FloatArray
    x_test: FloatArray
    y_test: FloatArray
    feature_state: FeatureState
    fingerprint: str
    quarantined_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample (without the batch axis)."""
        return tuple(int(v) for v in self.x_train.shape[1:])


def plants_of(baseline: str | Baseline) -> list[str]:
    """Return the plant ids of a baseline, in order."""
    return list(get_recipe(baseline).plants)


def _quarantine(frame: pd.DataFrame, contract: str) -> tuple[pd.DataFrame, int]:
    from baselines.contracts import get_contract  # local: contracts import pandera (slow)

    report = get_contract(contract).validate(frame)
    bad = report.bad_rows()
    if not bad:
        return frame, 0
    return frame.drop(index=frame.index[sorted(bad)]).reset_index(drop=True), len(bad)


def _cmapss(
    plant_id: str,
    recipe: Recipe,
    state: CmapssFeatureState | None,
    max_units: int | None,
    validate: bool,
    data_dir: Path | None = None,
) -> PlantData:
    train = datasets.load_cmapss(plant_id, "train", data_dir=data_dir)
    test = datasets.load_cmapss(plant_id, "test", data_dir=data_dir)
    rul = datasets.load_cmapss_rul(plant_id, data_dir=data_dir)
    if max_units is not None:
        train = train[train["unit"] <= max_units].reset_index(drop=True)
        test = test[test["unit"] <= max_units].reset_index(drop=True)
        rul = rul[:max_units]
    quarantined = 0
    if validate:
        train, quarantined = _quarantine(train, "cmapss-raw")
    config = CmapssFeatureConfig.from_dict(
        {k: v for k, v in recipe.features.items() if k != "pipeline"}
    )
    state = state or cmapss_features.fit(train, config)
    win = cmapss_features.windows(train, state, every_cycle=True)
    y = cmapss_features.rul_targets(train, state, win)
    test_win = cmapss_features.windows(test, state, every_cycle=False)
    # Units are numbered 1..N. The test truth gets the same piecewise-linear cap as training
    # (the protocol of the published reference, Li, Ding & Sun 2018); the raw RUL is kept in
    # ``extra["test_rul_uncapped"]`` and reported beside it.
    rul_uncapped = rul[test_win.unit - 1].astype(np.float32)
    y_test = np.minimum(rul_uncapped, np.float32(state.rul_cap))
    empty = np.zeros((0, *win.x.shape[1:]), dtype=np.float32)
    return PlantData(
        baseline=Baseline.CMAPSS,
        plant_id=plant_id,
        x_train=win.x,
        y_train=y,
        x_val=empty,
        y_val=np.zeros(0, dtype=np.float32),
        x_test=test_win.x,
        y_test=y_test,
        feature_state=state,
        fingerprint=training_fingerprint(
            train, recipe.training_json(plant_id), plant=plant_id
        ),
        quarantined_rows=quarantined,
        extra={
            "train_units": win.unit,
            "test_units": test_win.unit,
            "test_rul_uncapped": rul_uncapped,
        },
    )


def ai4i_split(frame: pd.DataFrame, recipe: Recipe) -> dict[str, IntArray]:
    """Return row positions of the recipe's stratified train / validation / test split."""
    split = recipe.split
    labels = frame[split.stratify_on or "machine_failure"].to_numpy()
    rest, test = stratified_holdout(labels, split.test_fraction or 0.2, split.seed)
    if split.validation_fraction > 0:
        tr, va = stratified_holdout(labels[rest], split.validation_fraction, split.seed + 1)
        train, val = rest[tr], rest[va]
    else:
        train, val = rest, np.zeros(0, dtype=np.int64)
    return {"train": train, "val": val, "test": test}


def _ai4i(
    plant_id: str | None, recipe: Recipe, state: Ai4iFeatureState | None, validate: bool
) -> PlantData:
    frame = datasets.load_ai4i()
    quarantined = 0
    if validate:
        # The contract speaks about the raw source (UDI steps of 1), so it runs before the split.
        frame, quarantined = _quarantine(frame, "ai4i-raw")
    parts = {k: frame.iloc[v].reset_index(drop=True) for k, v in ai4i_split(frame, recipe).items()}
    if plant_id is not None:
        if plant_id not in datasets.AI4I_TYPES:
            raise ValueError(f"unknown AI4I plant {plant_id!r}; expected one of L, M, H")
        parts = {k: v[v["type"] == plant_id].reset_index(drop=True) for k, v in parts.items()}
    state = state or ai4i_features.fit(parts["train"])

    targets = [ai4i_features.LABEL, *recipe.architecture.get("auxiliary_targets", [])]

    def xy(part: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
        x = ai4i_features.transform(part, state)
        y = part[targets].to_numpy(dtype=np.float32)
        return x, (y if len(targets) > 1 else y[:, 0])

    x_train, y_train = xy(parts["train"])
    x_val, y_val = xy(parts["val"])
    x_test, y_test = xy(parts["test"])
    modes = parts["test"][list(datasets.AI4I_FAILURE_MODES)].to_numpy(dtype=np.int64)
    return PlantData(
        baseline=Baseline.AI4I,
        plant_id=plant_id,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        feature_state=state,
        fingerprint=training_fingerprint(
            parts["train"], recipe.training_json(plant_id), plant=plant_id
        ),
        quarantined_rows=quarantined,
        extra={
            "test_failure_modes": modes,
            "failure_modes": datasets.AI4I_FAILURE_MODES,
            "test_frame": parts["test"],
        },
    )


def load_plant_data(
    baseline: str | Baseline,
    plant_id: str | None = None,
    *,
    recipe: Recipe | None = None,
    feature_state: FeatureState | None = None,
    max_units: int | None = None,
    validate: bool = True,
    data_dir: Path | None = None,
) -> PlantData:
    """Load one plant's train / validation / test arrays through the feature pipeline.

    Parameters
    ----------
    baseline
        ``"cmapss"`` or ``"ai4i"``.
    plant_id
        C-MAPSS subset (required for ``cmapss``) or AI4I Type; ``None`` for AI4I means all lines.
    recipe
        Recipe to follow; the baseline's standard recipe by default.
    feature_state
        A fitted state to reuse (e.g. the one shipped with the global model); fitted on the
        plant's training rows when omitted.
    max_units
        C-MAPSS only: keep units ``1..max_units`` of train and test (for quick tests).
    validate
        Check the raw training rows against the recipe's data contract and quarantine
        violating rows (their count is in ``quarantined_rows``).
    data_dir
        C-MAPSS only: the plant's own data directory (see ``datasets.load_cmapss``); the
        shipped copy when omitted.

    Returns
    -------
    PlantData
        Arrays, the feature state and the training-data fingerprint.

    Examples
    --------
    >>> data = load_plant_data("cmapss", "FD001", max_units=5)
    >>> data.x_train.shape[1:]
    (30, 14)
    """
    b = Baseline(baseline)
    recipe = recipe or get_recipe(b)
    if b is Baseline.CMAPSS:
        if plant_id is None:
            raise ValueError("C-MAPSS plant_id is required (FD001..FD004)")
        if feature_state is not None and not isinstance(feature_state, CmapssFeatureState):
            raise TypeError("feature_state must be a CmapssFeatureState")
        return _cmapss(plant_id, recipe, feature_state, max_units, validate, data_dir)
    if feature_state is not None and not isinstance(feature_state, Ai4iFeatureState):
        raise TypeError("feature_state must be an Ai4iFeatureState")
    return _ai4i(plant_id, recipe, feature_state, validate)


__all__ = ["FeatureState", "PlantData", "ai4i_split", "load_plant_data", "plants_of"]
