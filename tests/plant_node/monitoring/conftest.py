"""Real C-MAPSS FD001 streams for the monitoring tests (small: 100 test units, 13k rows)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from benchmarks.bench_monitoring import SENSORS, replay_fleet
from plant_node.monitoring import LogColumns

DATA = Path(__file__).parent / "data" / "fd001_test.csv.gz"
COLUMNS = LogColumns(features=tuple(SENSORS), unit="unit_id")


@pytest.fixture(scope="session")
def fd001() -> dict[str, pd.DataFrame]:
    """Reference and stable prediction logs from disjoint halves of the FD001 test units."""
    df = pd.read_csv(DATA)
    units = np.random.default_rng(7).permutation(df["unit"].unique())
    ref = replay_fleet(df[df["unit"].isin(units[:50])], seed=7)
    stable = replay_fleet(df[df["unit"].isin(units[50:])], seed=8, t0="2026-02-01")
    label = lambda d: d["rul"].clip(upper=125).astype(float)  # noqa: E731
    model = Ridge(alpha=1.0).fit(ref[SENSORS], label(ref))
    for d in (ref, stable):
        d["prediction"] = np.clip(model.predict(d[SENSORS]), 0, 125)
        d["label"] = label(d)
    return {"reference": ref, "stable": stable}


@pytest.fixture(scope="session")
def rul_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ridge RUL model on FD001 windows, exported as an OpenVINO IR (built once)."""
    from baselines.datasets import load_cmapss
    from baselines.features import cmapss
    from tests.plant_node.monitoring.node_helpers import build_rul_ir

    state = cmapss.fit(load_cmapss("FD001", "train"))
    return build_rul_ir(tmp_path_factory.mktemp("rul-model") / "cmapss-1", state)


@pytest.fixture(scope="session")
def ai4i_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The serving tests' logistic AI4I model (a classifier, for label-type checks)."""
    from baselines.datasets import load_ai4i
    from baselines.features import ai4i
    from tests.plant_node.serving.conftest import ai4i_model

    return ai4i_model(tmp_path_factory.mktemp("ai4i-model"), ai4i.fit(load_ai4i()), "1")
