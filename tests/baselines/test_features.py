import json

import numpy as np
import pytest

from baselines.datasets import load_ai4i, load_cmapss
from baselines.features import ai4i, cmapss, state_from_dict


def test_fd002_finds_six_conditions_and_fd001_one() -> None:
    assert cmapss.fit(load_cmapss("FD002")).n_conditions == 6
    assert cmapss.fit(load_cmapss("FD001")).n_conditions == 1


def test_flat_sensors_are_dropped_when_offered() -> None:
    config = cmapss.CmapssFeatureConfig(sensor_candidates=cmapss.ALL_SENSORS)
    state = cmapss.fit(load_cmapss("FD001"), config)
    assert {"s1", "s5", "s10", "s16", "s18", "s19"} == set(state.dropped_sensors)
    assert state.n_features == 15


def test_windows_targets_and_padding() -> None:
    # Prepare
    train = load_cmapss("FD001")
    state = cmapss.fit(train)
    unit1 = train[train["unit"] == 1]
    # Execute
    win = cmapss.windows(unit1, state, every_cycle=True)
    y = cmapss.rul_targets(unit1, state, win)
    short = cmapss.transform(unit1.head(7), state)
    # Assert
    assert win.x.shape == (len(unit1) - 29, 30, 14) and win.x.dtype == np.float32
    assert y[-1] == 0 and y.max() == 125
    assert np.all(np.diff(y[y < 125]) == -1)
    assert short.shape == (1, 30, 14)
    assert np.array_equal(short[0, :24], np.repeat(short[0, 23:24], 24, axis=0))


def test_condition_normalization_centres_each_condition() -> None:
    train = load_cmapss("FD004")
    state = cmapss.fit(train)
    z = cmapss.normalize(train, state)
    cond = cmapss.assign_conditions(train, state)
    for k in range(6):
        assert np.allclose(z[cond == k].mean(axis=0), 0.0, atol=1e-8)


def test_cmapss_training_and_serving_paths_give_identical_arrays() -> None:
    # Prepare: state through JSON, as a plant node would receive it
    train = load_cmapss("FD002")
    state = cmapss.CmapssFeatureState.from_json(json.dumps(json.loads(cmapss.fit(train).to_json())))
    test = load_cmapss("FD002", "test")
    # Execute: training path over whole frames vs the line's single-sample path
    batch = cmapss.windows(test, state, every_cycle=False)
    for i, unit in enumerate(batch.unit[:25]):
        rows = test[test["unit"] == unit].tail(40).to_dict("records")
        line = cmapss.transform_rows(rows, state)
        # Assert
        assert np.array_equal(line[0], batch.x[i])
    train_windows = cmapss.windows(train, state, every_cycle=True)
    unit1 = train[train["unit"] == 1]
    rows = unit1.head(45).to_dict("records")
    assert np.array_equal(cmapss.transform_rows(rows, state)[0], train_windows.x[15])


def test_ai4i_training_and_serving_paths_give_identical_arrays() -> None:
    frame = load_ai4i()
    state = state_from_dict(json.loads(ai4i.fit(frame).to_json()))
    batch = ai4i.transform(frame, state)
    records = frame.drop(columns=["machine_failure", "twf", "hdf", "pwf", "osf", "rnf"])
    for i in (0, 17, 4242, 9999):
        line = ai4i.transform_rows([records.iloc[i].to_dict()], state)
        assert np.array_equal(line[0], batch[i])
    assert np.array_equal(
        ai4i.transform_rows(records.head(64).to_dict("records"), state), batch[:64]
    )


def test_ai4i_derived_features_are_physical_and_labels_are_not_features() -> None:
    frame = load_ai4i().head(3)
    cols = ai4i.derived_columns(frame)
    expected_power = frame["torque_nm"] * frame["rotational_speed_rpm"] * 2 * np.pi / 60
    assert np.allclose(cols["power_w"], expected_power)
    assert np.allclose(
        cols["temp_diff_k"], frame["process_temperature_k"] - frame["air_temperature_k"]
    )
    state = ai4i.fit(load_ai4i())
    assert not ai4i.FORBIDDEN & set(state.feature_names)
    # Changing a label never changes the features.
    flipped = frame.assign(machine_failure=1 - frame["machine_failure"], twf=1)
    assert np.array_equal(ai4i.transform(frame, state), ai4i.transform(flipped, state))


def test_unknown_type_is_refused_by_the_pipeline() -> None:
    state = ai4i.fit(load_ai4i())
    row = load_ai4i().iloc[0].to_dict() | {"type": "Z"}
    with pytest.raises(ValueError, match="unknown product Type"):
        ai4i.transform_rows([row], state)


def test_states_reject_foreign_documents() -> None:
    with pytest.raises(ValueError):
        state_from_dict({"kind": "nope"})
