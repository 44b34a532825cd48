"""Chunk numbering: by size without splitting a timestamp, by calendar period, continued."""

import pandas as pd
import pytest

from plant_node.monitoring import CHUNK_COLUMN, assign_chunks, iter_chunks


def _frame(times):
    return pd.DataFrame({"timestamp": pd.to_datetime(times), "x": range(len(times))})


def test_size_chunks_keep_rows_of_one_timestamp_together():
    times = ["2026-01-01 00:00"] * 3 + ["2026-01-01 00:10"] * 3 + ["2026-01-01 00:20"] * 3
    out = assign_chunks(_frame(times)[::-1], timestamp="timestamp", size=4, start_index=7)

    assert out[CHUNK_COLUMN].tolist() == [7, 7, 7, 7, 7, 7, 8, 8, 8]
    assert out["timestamp"].is_monotonic_increasing


def test_unique_timestamps_give_exact_sizes_and_period_chunks_follow_the_calendar():
    frame = _frame(pd.date_range("2026-01-01", periods=10, freq="h"))

    by_size = assign_chunks(frame, timestamp="timestamp", size=4)
    by_period = assign_chunks(frame, timestamp="timestamp", period="4h")

    assert by_size[CHUNK_COLUMN].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert by_period[CHUNK_COLUMN].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert [(k, len(rows)) for k, rows in iter_chunks(by_size)] == [(0, 4), (1, 4), (2, 2)]
    with pytest.raises(ValueError):
        assign_chunks(frame, timestamp="timestamp", size=4, period="4h")
