"""Outcomes become labels; alarms are tallied against real failures."""

import numpy as np
import pandas as pd
import pytest

from plant_node.monitoring import LogColumns
from plant_node.monitoring.outcomes import label_from_failure, tally_failure_alarms

COLS = LogColumns(features=("a",), unit="unit_id")


def test_failure_record_labels_the_units_rows_with_capped_rul():
    log = pd.DataFrame({"unit_id": ["17"] * 3 + ["18"], "cycle": [1, 100, 200, 5], "a": 0.0})

    out = label_from_failure(log, columns=COLS, unit="17", failed_at=212)

    assert out["label"].iloc[:3].tolist() == [125.0, 112.0, 12.0]
    assert np.isnan(out["label"].iloc[3])
    assert "label" not in log


def test_bad_outcomes_are_refused():
    log = pd.DataFrame({"unit_id": ["17"], "cycle": [300], "a": 0.0})

    with pytest.raises(ValueError, match="no prediction"):
        label_from_failure(log, columns=COLS, unit="99", failed_at=10)
    with pytest.raises(ValueError, match="after its reported failure"):
        label_from_failure(log, columns=COLS, unit="17", failed_at=212)


def test_alarms_before_a_failure_are_true_the_rest_false():
    t = pd.Timestamp("2026-01-01")
    alerts = [t, t + pd.Timedelta(days=10)]
    failures = [t + pd.Timedelta(hours=20)]

    assert tally_failure_alarms(alerts, failures, horizon=pd.Timedelta(days=1)) == (1, 1)
