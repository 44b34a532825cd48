"""Serving fixtures: fitted feature states of the shipped data and models built from them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from baselines.datasets import load_ai4i, load_cmapss
from baselines.features import ai4i, cmapss
from plant_node.config import NodeSettings
from plant_node.main import create_app
from plant_node.serving.cache import ModelCache
from tests.plant_node.keys import auth
from tests.plant_node.serving.irs import build_logistic_ir, build_window_ir

AI4I_WEIGHTS = [0.3, -0.2, 0.1, 0.9, 1.2, 0.4, -0.5, 1.1, 0.2, 0.0, -0.1]


@pytest.fixture(scope="session")
def ai4i_state() -> ai4i.Ai4iFeatureState:
    return ai4i.fit(load_ai4i())


@pytest.fixture(scope="session")
def cmapss_state() -> cmapss.CmapssFeatureState:
    return cmapss.fit(load_cmapss("FD001", "train"))


@pytest.fixture(scope="session")
def ai4i_records() -> list[dict[str, Any]]:
    frame = load_ai4i().head(20)
    cols = ["type", *ai4i.RAW_NUMERIC]
    return [{c: (str(v) if c == "type" else float(v)) for c, v in zip(cols, row, strict=True)}
            for row in frame[cols].itertuples(index=False)]  # fmt: skip


@pytest.fixture(scope="session")
def cmapss_records() -> list[dict[str, Any]]:
    frame = load_cmapss("FD001", "test")
    frame = frame[frame["unit"].isin([1, 2])].groupby("unit").tail(35)
    out = []
    for rec in frame.to_dict(orient="records"):
        out.append({k: (int(v) if k in ("unit", "cycle") else float(v)) for k, v in rec.items()})
    return out


def ai4i_model(
    root: Path, state: ai4i.Ai4iFeatureState, version: str, weights: list[float] | None = None
) -> Path:
    return build_logistic_ir(
        root / f"ai4i-{version}",
        weights or AI4I_WEIGHTS,
        -1.0,
        version=version,
        baseline="ai4i",
        name="ai4i-mlp",
        extra={"feature_state": state.to_dict(), "threshold": 0.5},
    )


def cmapss_model(root: Path, state: cmapss.CmapssFeatureState, version: str) -> Path:
    return build_window_ir(
        root / f"cmapss-{version}",
        state.window,
        state.n_features,
        version=version,
        extra={"feature_state": state.to_dict()},
    )


@pytest.fixture
def served_settings(
    node_settings: NodeSettings,
    tmp_path: Path,
    ai4i_state: ai4i.Ai4iFeatureState,
    cmapss_state: cmapss.CmapssFeatureState,
) -> NodeSettings:
    cache = ModelCache(node_settings.cache_path)
    cache.install(ai4i_model(tmp_path / "src", ai4i_state, "1"))
    cache.install(cmapss_model(tmp_path / "src", cmapss_state, "1"))
    cache.set_champion("ai4i", "1")  # what the hub assigned
    cache.set_champion("cmapss", "1")
    return node_settings


@pytest.fixture
def client(served_settings: NodeSettings) -> Iterator[TestClient]:
    with TestClient(create_app(served_settings), headers=auth()) as c:
        yield c


def logistic_score(state: ai4i.Ai4iFeatureState, record: dict[str, Any]) -> float:
    x = ai4i.transform_rows([record], state)[0].astype(np.float64)
    return float(1 / (1 + np.exp(-(x @ np.asarray(AI4I_WEIGHTS) - 1.0))))
