"""The realized-loss CUSUM: a change of the input-label relationship is caught from labels."""

import numpy as np
import pytest

from benchmarks.monitoring_scenarios import unit_ordered
from plant_node.monitoring.engine import (
    SEQUENTIAL_LOSS_KEY,
    MonitorConfig,
    fit_monitor,
    raised_alerts,
    row_loss,
    run_monitor,
)
from plant_node.monitoring.guards import CONCEPT_SHIFT_KEY, REALIZED_LOSS_COLUMN
from tests.plant_node.monitoring.conftest import COLUMNS

CONFIG = MonitorConfig(
    chunk_size=500, expected_interval_s=600, problem="regression", metrics=("rmse", "mae")
)


@pytest.fixture(scope="module")
def monitor(fd001):
    return fit_monitor(fd001["reference"], columns=COLUMNS, config=CONFIG)


def _one_by_one(stable, seed):
    rows = stable.drop(columns=["timestamp"])
    return unit_ordered(rows, unit="unit", order="cycle", seed=seed, t0="2026-02-01", step_s=600)


def test_the_loss_is_absolute_error_for_a_regressor_brier_for_a_classifier_and_nan_unlabelled(
    fd001,
):
    rows = fd001["stable"].head(4).copy()
    rows.loc[rows.index[0], "label"] = np.nan

    regression = row_loss(rows, COLUMNS, "regression")
    brier = row_loss(rows, COLUMNS, "classification_binary")

    assert regression is not None and brier is not None
    assert np.isnan(regression[0]) and np.isnan(brier[0])
    diff = (rows["prediction"] - rows["label"]).to_numpy()[1:]
    assert regression[1:] == pytest.approx(np.abs(diff))
    assert brier[1:] == pytest.approx(diff**2)
    assert row_loss(rows, COLUMNS, None) is None


@pytest.mark.parametrize("seed", [11, 12])
def test_a_process_change_is_caught_from_labels_and_the_unchanged_stream_stays_quiet(
    monitor, fd001, seed
):
    # units one after another, in an order the reference never saw (a held-out seed)
    stable = _one_by_one(fd001["stable"], seed)
    detector = next(d for d in monitor.detectors.detectors if d.column == REALIZED_LOSS_COLUMN)
    assert not detector.two_sided  # a loss that falls is no alarm

    quiet, _ = run_monitor(monitor, stable, hold_partial=True)

    assert len(quiet) >= 8
    assert raised_alerts(quiet) == []
    assert not any(CONCEPT_SHIFT_KEY in r.unreliable for r in quiet)

    # the same readings, but engines now last 40 % less (inputs unchanged, labels moved)
    change = 3
    changed = stable.copy()
    after = changed.index >= change * 500
    changed.loc[after, "label"] = (changed.loc[after, "rul"] * 0.6).clip(upper=125)

    results, _ = run_monitor(monitor, changed, hold_partial=True)

    alerts = raised_alerts(results)
    loss = next(a for a in alerts if a.key == SEQUENTIAL_LOSS_KEY)
    # the fixture's ridge model errs a lot already: the loss triples, caught within 5 chunks
    assert change <= loss.raised_chunk <= change + 5
    assert loss.top_features[0][0] == REALIZED_LOSS_COLUMN
    assert all(a.raised_chunk >= change for a in alerts)
    # from the alert on, the estimates are not trusted: the relationship they assume moved
    flagged = [r.chunk for r in results if CONCEPT_SHIFT_KEY in r.unreliable]
    assert flagged and min(flagged) <= loss.raised_chunk
