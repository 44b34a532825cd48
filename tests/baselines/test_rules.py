import json

import numpy as np

from baselines.datasets import load_ai4i
from baselines.metrics import f1_score, rmse
from baselines.rules import HealthIndexRule, evaluate_rules, fit_health_index, predict_rows


def test_ai4i_rules_reproduce_the_deterministic_failure_modes() -> None:
    frame = load_ai4i()
    result = evaluate_rules(frame)
    for mode in ("hdf", "pwf", "osf"):
        labelled = frame[mode].to_numpy() == 1
        assert result.fired[mode][labelled].all(), mode
    assert f1_score(frame["machine_failure"], result.failure) > 0.85


def test_ai4i_rules_single_record_path() -> None:
    row = {
        "type": "L", "air_temperature_k": 300.0, "process_temperature_k": 308.0,
        "rotational_speed_rpm": 1300, "torque_nm": 40.0, "tool_wear_min": 10,
    }  # fmt: skip
    result = predict_rows([row, row | {"process_temperature_k": 312.0}])
    assert result.failure.tolist() == [True, False]
    assert result.fired["hdf"].tolist() == [True, False]


def test_osf_limit_depends_on_the_variant() -> None:
    base = {"air_temperature_k": 300.0, "process_temperature_k": 311.0,
            "rotational_speed_rpm": 1500, "torque_nm": 60.0, "tool_wear_min": 210}  # fmt: skip
    # 60 Nm x 210 min = 12,600 minNm: over L and M limits, under H.
    result = predict_rows([base | {"type": t} for t in ("L", "M", "H")])
    assert result.fired["osf"].tolist() == [True, True, False]


def test_health_index_rule_beats_the_mean_and_round_trips(cmapss_small) -> None:
    rule = fit_health_index(cmapss_small.x_train, cmapss_small.y_train)
    again = HealthIndexRule.from_dict(json.loads(rule.to_json()))
    pred = again.predict(cmapss_small.x_test)
    baseline = np.full_like(pred, cmapss_small.y_train.mean())
    assert rmse(cmapss_small.y_test, pred) < rmse(cmapss_small.y_test, baseline)
    assert pred.min() >= 0 and pred.max() <= 125
