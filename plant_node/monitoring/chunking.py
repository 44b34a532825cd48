"""What the monitoring engine reads: the prediction-log columns and how rows become chunks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]

#: Name of the column :func:`assign_chunks` adds to a log frame.
CHUNK_COLUMN = "_chunk"


@dataclass(frozen=True)
class LogColumns:
    """Column names of a prediction-log frame handed to the monitoring engine.

    One row is one logged prediction. The node's prediction-log table is mapped to these
    names before monitoring; extra columns are ignored.

    Parameters
    ----------
    features
        Model input features, by name (numeric).
    prediction
        The model output: failure probability for a classifier, RUL for a regressor.
    timestamp
        When the observation was taken.
    unit
        Asset / unit identifier (raw; pseudonymized only when a report leaves the plant).
    label
        Ground truth, once it has arrived (optional column, may be NaN for unlabelled rows).
    predicted_class
        Thresholded class for a classifier (derived from ``prediction`` when absent).
    latency_ms
        Serving latency of the prediction, in milliseconds (optional column).
    received_at
        When the row reached the node (optional; used to count late rows).
    """

    features: tuple[str, ...]
    prediction: str = "prediction"
    timestamp: str = "timestamp"
    unit: str = "unit_id"
    label: str = "label"
    predicted_class: str = "predicted_class"
    latency_ms: str = "latency_ms"
    received_at: str = "received_at"


def assign_chunks(
    frame: pd.DataFrame,
    *,
    timestamp: str,
    size: int | None = None,
    period: str | None = None,
    start_index: int = 0,
) -> pd.DataFrame:
    """Sort a log frame by time and number its chunks in :data:`CHUNK_COLUMN`.

    Parameters
    ----------
    frame
        Prediction-log rows.
    timestamp
        Name of the timestamp column.
    size
        Rows per chunk. Rows sharing a timestamp never straddle two chunks (a chunk may
        exceed ``size`` by the rows of its last timestamp), so a later run that starts at a
        timestamp reproduces the same chunks. Exactly one of ``size`` / ``period``.
    period
        A pandas offset alias (``"1h"``, ``"8h"``): chunks are calendar periods.
    start_index
        First chunk number, so incremental runs keep numbering.

    Returns
    -------
    pandas.DataFrame
        A sorted copy with an integer chunk column.

    Raises
    ------
    ValueError
        If neither or both of ``size`` and ``period`` are given.
    """
    if (size is None) == (period is None):
        raise ValueError("give exactly one of size= or period=")
    out = frame.sort_values(timestamp, kind="stable").reset_index(drop=True)
    if size is not None:
        if size <= 0:
            raise ValueError("size must be positive")
        ts = out[timestamp].to_numpy()
        new_time = np.r_[True, ts[1:] != ts[:-1]] if len(ts) else np.zeros(0, dtype=bool)
        first_of_time = np.maximum.accumulate(np.where(new_time, np.arange(len(out)), 0))
        # a chunk starts at the first new timestamp at or after each multiple of `size`
        out[CHUNK_COLUMN] = start_index + _chunk_of(first_of_time, new_time, size)
    else:
        bins = pd.to_datetime(out[timestamp]).dt.floor(str(period))
        out[CHUNK_COLUMN] = start_index + pd.factorize(bins, sort=True)[0]
    return out


def _chunk_of(first_of_time: np.ndarray, new_time: np.ndarray, size: int) -> np.ndarray:
    chunk = np.zeros(len(first_of_time), dtype=np.int64)
    current, opened_at = 0, 0
    for i in np.flatnonzero(new_time).tolist():
        if i - opened_at >= size:
            current += 1
            opened_at = i
        chunk[i] = current
    # rows that repeat a timestamp inherit the chunk of its first row
    inherited: np.ndarray = chunk[first_of_time]
    return inherited


def iter_chunks(frame: pd.DataFrame) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(chunk_index, rows)`` of a frame numbered by :func:`assign_chunks`, in order."""
    for key, rows in frame.groupby(CHUNK_COLUMN, sort=True):
        yield int(key), rows
