"""The contract gate's fast path never accepts what the full pandera contract rejects."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from baselines.contracts import get_contract
from plant_node.serving.pipelines import ContractGate, default_pipelines


def _mutations(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    out = dict(record)
    key = rng.choice(sorted(out))
    choice = rng.randrange(10)
    if choice == 0:
        out[key] = None
    elif choice == 1:
        out[key] = "abc"
    elif choice == 2:
        out[key] = -1e9
    elif choice == 3:
        out[key] = 1e9
    elif choice == 4:
        del out[key]
    elif choice == 5:
        out[key] = float("nan")
    elif choice == 6:
        out[key] = True
    elif choice == 7:
        out[key] = 2**60 + 1  # an int float64 cannot hold exactly
    elif choice == 8:
        out[key] = out[key] + 0.5 if isinstance(out[key], int | float) else 0.5
    else:
        out[key] = np.float64(1.0)  # a numpy scalar, not a JSON number
    return out


@pytest.mark.parametrize("name", ["ai4i-raw", "cmapss-raw"])
def test_fast_path_agrees_with_pandera(
    name: str, ai4i_records: list[dict[str, Any]], cmapss_records: list[dict[str, Any]]
) -> None:
    contract = get_contract(name)
    gate = ContractGate(contract)
    base = ai4i_records[:5] if name == "ai4i-raw" else cmapss_records[:30]
    rng = random.Random(0)

    for trial in range(90):
        batch = [dict(r) for r in base]
        if trial % 3:
            i = rng.randrange(len(batch))
            batch[i] = _mutations(batch[i], rng)
        if name == "cmapss-raw" and trial % 7 == 0:
            batch[4]["cycle"] = batch[2]["cycle"]  # frame rule: cycles must increase by 1
        full = contract.validate(pd.DataFrame(batch), with_labels=False)
        fast = gate.validate(batch)

        # The node is stricter than pandera on JSON types only: "42" or true for a number
        # is a "type" violation (pandera would coerce it); every other verdict is pandera's.
        typed = {r for r in fast.rules() if r[0] == "type"}
        assert fast.ok == (full.ok and not typed), (trial, batch)
        assert fast.rules() - typed == full.rules()


def test_fallback_rules_come_from_baselines(cmapss_records: list[dict[str, Any]]) -> None:
    ok = {"type": "L", "air_temperature_k": 300.0, "process_temperature_k": 310.0,
          "rotational_speed_rpm": 1500.0, "torque_nm": 40.0, "tool_wear_min": 100.0}  # fmt: skip
    heat = dict(ok, process_temperature_k=308.0, rotational_speed_rpm=1300.0, torque_nm=60.0)
    power = dict(ok, torque_nm=10.0)
    pipelines = default_pipelines()

    ai4i_scores = pipelines["ai4i"].fallback_rule().predict([ok, heat, power])
    engines = pipelines["cmapss"].items(cmapss_records)
    rul = pipelines["cmapss"].fallback_rule().predict(engines)

    assert ai4i_scores.tolist() == [0.0, 1.0, 1.0]
    assert rul.shape == (2,) and np.all((rul >= 0) & (rul <= 125))
