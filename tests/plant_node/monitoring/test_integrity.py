"""Integrity: nulls, ranges, contract violations, stuck sensors across chunks, gaps, late rows."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from plant_node.monitoring import LogColumns
from plant_node.monitoring.integrity import (
    IntegrityReference,
    IntegrityState,
    check_chunk,
    count_violations,
    fit_integrity_reference,
)

COLS = LogColumns(features=("a", "b"), unit="unit_id")


def _log(n_units=3, steps=40, start="2026-01-01", seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_units):
        for t in range(steps):
            rows.append(
                {
                    "unit_id": f"u{u}",
                    "timestamp": pd.Timestamp(start) + pd.Timedelta(minutes=10 * t),
                    "a": rng.normal(10, 1),
                    "b": rng.normal(0, 2),
                }
            )
    return pd.DataFrame(rows).sort_values("timestamp", kind="stable").reset_index(drop=True)


@pytest.fixture
def ref() -> IntegrityReference:
    return fit_integrity_reference(_log(), columns=COLS, window=5)


def test_reference_learns_interval_and_ranges(ref):
    assert ref.interval_s == 600
    assert ref.low["a"] < 10 < ref.high["a"]
    fixed = fit_integrity_reference(_log(), columns=COLS, ranges={"a": (0, 20)})
    assert (fixed.low["a"], fixed.high["a"]) == (0.0, 20.0)
    assert IntegrityReference.from_dict(ref.to_dict()) == ref


def test_clean_chunk_counts_nothing(ref):
    res, _ = check_chunk(ref, _log(seed=1), IntegrityState(), columns=COLS)

    assert res.rates() == {k: 0.0 for k in res.rates()}
    assert res.n_units == 3 and res.n_rows == 120


def test_nulls_and_out_of_range_are_counted_per_feature(ref):
    rows = _log(seed=1)
    rows.loc[:9, "a"] = np.nan
    rows.loc[20:22, "b"] = 1e6

    res, _ = check_chunk(ref, rows, IntegrityState(), columns=COLS)

    assert res.null_counts == {"a": 10, "b": 0}
    assert res.out_of_range == {"a": 0, "b": 3}
    assert res.null_rate == pytest.approx(10 / 120)
    assert res.worst_columns()["integrity:null_rate"] == [("a", pytest.approx(10 / 120))]


def test_contract_violations_count_dicts_and_report_objects():
    @dataclass
    class Violation:
        rule: str
        column: str | None
        row_indices: list[int]
        count: int

    entries = [
        {"rule": "range", "column": "a", "row_indices": [1, 2], "count": 2},
        Violation("range", "a", [7], 1),
        {"rule": "missing_column", "column": None, "row_indices": [], "count": 0},
        {"rule": "null_rate", "column": "b", "row_indices": [3, 4, 5]},
    ]

    assert count_violations(entries) == {"range:a": 3, "missing_column:*": 0, "null_rate:b": 3}


def test_stuck_sensor_is_found_across_a_chunk_boundary(ref):
    log = _log(steps=40, seed=2)
    # unit u1 freezes sensor b from step 17: 3 flat readings in chunk 1, 2 more in chunk 2
    u1 = log.index[log["unit_id"] == "u1"]
    log.loc[u1[17:], "b"] = 1.25
    first, second = (
        log[log["timestamp"] < log["timestamp"].iloc[60]],
        log[log["timestamp"] >= log["timestamp"].iloc[60]],
    )
    assert (first["unit_id"] == "u1").sum() == 20

    r1, state = check_chunk(ref, first, IntegrityState(), columns=COLS)
    r2, _ = check_chunk(ref, second, state, columns=COLS)

    assert r1.stuck == {}
    assert r2.stuck == {"b": ["u1"]}
    assert r2.stuck_rate == pytest.approx(1 / 3)
    assert len(state.units["u1"].recent) == ref.window - 1


def test_gaps_count_missing_rows_including_across_chunks(ref):
    log = _log(seed=3)
    drop = log.index[(log["unit_id"] == "u0")][[5, 6, 7, 30]]
    first = log.drop(index=drop)
    a, b = first.iloc[:60], first.iloc[60:]

    ra, state = check_chunk(ref, a, IntegrityState(), columns=COLS)
    rb, _ = check_chunk(ref, b, state, columns=COLS)

    assert ra.missing_rows + rb.missing_rows == 4
    assert (ra.missing_rows, rb.missing_rows) == (3, 1)
    assert rb.missing_rate == pytest.approx(1 / (len(b) + 1))


def test_late_rows_use_received_at():
    ref = fit_integrity_reference(_log(), columns=COLS, max_delay_s=300)
    rows = _log(seed=4)
    rows["received_at"] = rows["timestamp"] + pd.Timedelta(seconds=10)
    rows.loc[:4, "received_at"] = rows.loc[:4, "timestamp"] + pd.Timedelta(hours=2)

    res, _ = check_chunk(ref, rows, IntegrityState(), columns=COLS)

    assert res.late_rows == 5


def test_no_stuck_sensor_on_real_fd001_stream(fd001):
    from tests.plant_node.monitoring.conftest import COLUMNS

    ref = fit_integrity_reference(fd001["reference"], columns=COLUMNS, window=10)
    res, _ = check_chunk(ref, fd001["stable"], IntegrityState(), columns=COLUMNS)

    assert res.missing_rows == 0
    assert res.stuck_rate < 0.05  # s17 is integer-valued: a rare natural 10-reading plateau
