"""Data integrity per chunk: nulls, range and contract violations, stuck sensors, missing rows.

Checks run chunk by chunk and carry a small per-unit tail between chunks
(:class:`IntegrityState`: the last ``window - 1`` readings and the last timestamp of each
unit), so memory is bounded by units x window whatever the length of the log.

Contract violations come from the data-contract validator in its report format, one dict
per failed rule: ``{"rule", "column", "row_indices", "count"}``; this module only counts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from plant_node.monitoring.chunking import CHUNK_COLUMN, LogColumns


@dataclass(frozen=True)
class IntegrityReference:
    """What normal looks like, fitted on the reference period.

    Parameters
    ----------
    features
        Checked feature columns.
    low, high
        Allowed range per feature: the contract's, or the reference range widened by
        ``range_margin`` reference standard deviations.
    std
        Reference standard deviation per feature (scale for "near-zero" variation).
    interval_s
        Expected seconds between two readings of one unit.
    window
        Consecutive readings of one unit that must stay flat to call a sensor stuck.
    stuck_tolerance
        A window is flat when ``max - min <= stuck_tolerance * std``.
    max_delay_s
        A row received later than this after its timestamp is late.
    """

    features: list[str]
    low: dict[str, float]
    high: dict[str, float]
    std: dict[str, float]
    interval_s: float
    window: int = 10
    stuck_tolerance: float = 0.01
    max_delay_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntegrityReference:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**data)


@dataclass(frozen=True)
class UnitTail:
    """The last readings of one unit, carried to the next chunk."""

    last_ts: float
    recent: list[list[float]]


@dataclass(frozen=True)
class IntegrityState:
    """Per-unit tails between chunks; persist it between job runs."""

    units: dict[str, UnitTail] = field(default_factory=dict)


@dataclass(frozen=True)
class ChunkIntegrity:
    """Integrity counts of one chunk.

    Parameters
    ----------
    chunk, n_rows
        Chunk index and rows.
    n_units
        Distinct units in the chunk.
    null_counts
        Missing values per feature.
    out_of_range
        Values outside the allowed range, per feature.
    contract_violations
        Failed-row counts per ``"rule:column"`` from the contract validator.
    stuck
        Units whose feature stayed flat over a full window, per feature.
    missing_rows
        Readings that should have arrived (gaps in each unit's expected cadence) but did not.
    late_rows
        Rows received more than ``max_delay_s`` after their timestamp.
    """

    chunk: int
    n_rows: int
    n_units: int
    null_counts: dict[str, int]
    out_of_range: dict[str, int]
    contract_violations: dict[str, int]
    stuck: dict[str, list[str]]
    missing_rows: int
    late_rows: int

    @property
    def null_rate(self) -> float:
        """Worst per-feature share of missing values."""
        if not self.n_rows or not self.null_counts:
            return 0.0
        return max(self.null_counts.values()) / self.n_rows

    @property
    def out_of_range_rate(self) -> float:
        """Worst per-feature share of out-of-range values."""
        if not self.n_rows or not self.out_of_range:
            return 0.0
        return max(self.out_of_range.values()) / self.n_rows

    @property
    def stuck_rate(self) -> float:
        """Worst per-feature share of this chunk's units with a stuck sensor."""
        if not self.n_units or not self.stuck:
            return 0.0
        return max(len(u) for u in self.stuck.values()) / self.n_units

    @property
    def missing_rate(self) -> float:
        """Missing readings over expected readings."""
        expected = self.n_rows + self.missing_rows
        return self.missing_rows / expected if expected else 0.0

    @property
    def late_rate(self) -> float:
        """Late rows over rows."""
        return self.late_rows / self.n_rows if self.n_rows else 0.0

    def worst_columns(self) -> dict[str, list[tuple[str, float]]]:
        """Return, per integrity rule key, the columns with the highest rate, worst first."""

        def top(shares: dict[str, float]) -> list[tuple[str, float]]:
            return sorted(((k, v) for k, v in shares.items() if v > 0), key=lambda kv: -kv[1])[:3]

        n, units = max(self.n_rows, 1), max(self.n_units, 1)
        return {
            "integrity:null_rate": top({k: v / n for k, v in self.null_counts.items()}),
            "integrity:out_of_range_rate": top({k: v / n for k, v in self.out_of_range.items()}),
            "integrity:stuck_rate": top({k: len(v) / units for k, v in self.stuck.items()}),
            "integrity:missing_rate": [],
            "integrity:late_rate": [],
        }

    def rates(self) -> dict[str, float]:
        """Return the alertable rates, keyed like the integrity alert rules."""
        return {
            "integrity:null_rate": self.null_rate,
            "integrity:out_of_range_rate": self.out_of_range_rate,
            "integrity:stuck_rate": self.stuck_rate,
            "integrity:missing_rate": self.missing_rate,
            "integrity:late_rate": self.late_rate,
        }


def _seconds(values: pd.Series) -> np.ndarray:
    ts = pd.to_datetime(values)
    seconds: np.ndarray = ts.astype("datetime64[ns]").astype(np.int64).to_numpy() / 1e9
    return seconds


def fit_integrity_reference(
    reference: pd.DataFrame,
    *,
    columns: LogColumns,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    interval_s: float | None = None,
    range_margin: float = 1.0,
    window: int = 10,
    stuck_tolerance: float = 0.01,
    max_delay_s: float | None = None,
) -> IntegrityReference:
    """Learn ranges, scales and the sampling interval from the reference period.

    Parameters
    ----------
    reference
        Reference rows.
    columns
        Column names of the log.
    ranges
        Contract ranges ``{feature: (low, high)}``; they win over learned ranges.
    interval_s
        Expected seconds between readings of one unit (the contract's frequency); inferred
        as the median per-unit gap of the reference when omitted.
    range_margin
        Learned range = reference min/max widened by this many reference std.
    window, stuck_tolerance, max_delay_s
        See :class:`IntegrityReference`.

    Returns
    -------
    IntegrityReference
        The fitted reference.
    """
    feats = list(columns.features)
    x = reference[feats].astype(np.float64)
    std = x.std(ddof=0).fillna(0.0)
    low = (x.min() - range_margin * std).to_dict()
    high = (x.max() + range_margin * std).to_dict()
    for name, (lo, hi) in (ranges or {}).items():
        low[name], high[name] = float(lo), float(hi)
    if interval_s is None:
        ts = pd.Series(_seconds(reference[columns.timestamp]), index=reference.index)
        gaps = ts.groupby(reference[columns.unit]).diff().dropna()
        gaps = gaps[gaps > 0]
        interval_s = float(gaps.median()) if len(gaps) else 0.0
    return IntegrityReference(
        features=feats,
        low={k: float(v) for k, v in low.items()},
        high={k: float(v) for k, v in high.items()},
        std={k: float(v) for k, v in std.items()},
        interval_s=float(interval_s),
        window=window,
        stuck_tolerance=stuck_tolerance,
        max_delay_s=max_delay_s,
    )


def count_violations(violations: Iterable[Any]) -> dict[str, int]:
    """Count contract violations per ``"rule:column"``.

    Parameters
    ----------
    violations
        Validator report entries: dicts ``{"rule", "column", "row_indices", "count"}`` or
        objects with those attributes (``baselines.contracts.Violation``).

    Returns
    -------
    dict[str, int]
        Failed rows per ``"rule:column"`` (``"*"`` for frame-level rules).
    """
    counts: dict[str, int] = {}
    for v in violations:
        entry = v if isinstance(v, Mapping) else vars(v)
        key = f"{entry['rule']}:{entry.get('column') or '*'}"
        n = entry.get("count")
        if n is None:
            n = len(entry.get("row_indices") or ())
        counts[key] = counts.get(key, 0) + int(n)
    return counts


def check_chunk(
    reference: IntegrityReference,
    rows: pd.DataFrame,
    state: IntegrityState,
    *,
    columns: LogColumns,
    chunk: int = 0,
    violations: Iterable[Any] = (),
) -> tuple[ChunkIntegrity, IntegrityState]:
    """Check one chunk and return its counts with the state for the next chunk.

    Parameters
    ----------
    reference
        From :func:`fit_integrity_reference`.
    rows
        The chunk's log rows, in time order.
    state
        Returned for the previous chunk (``IntegrityState()`` at the start).
    columns
        Column names of the log.
    chunk
        Chunk index, carried into the result.
    violations
        Contract-validator report entries for the rows of this chunk.

    Returns
    -------
    tuple[ChunkIntegrity, IntegrityState]
        Counts for this chunk, and the next state.
    """
    feats = reference.features
    x = rows[feats].to_numpy(dtype=np.float64)
    nulls = np.isnan(x)
    low = np.array([reference.low[f] for f in feats])
    high = np.array([reference.high[f] for f in feats])
    with np.errstate(invalid="ignore"):
        outside = (~nulls) & ((x < low) | (x > high))
    tol = np.array([reference.std[f] for f in feats]) * reference.stuck_tolerance
    ts = _seconds(rows[columns.timestamp])
    units = rows[columns.unit].astype(str).to_numpy()
    interval = reference.interval_s
    w = reference.window

    stuck: dict[str, list[str]] = {}
    missing = 0
    tails = dict(state.units)
    order = np.argsort(units, kind="stable")
    bounds = np.flatnonzero(np.r_[True, units[order][1:] != units[order][:-1], True])
    for b0, b1 in zip(bounds[:-1], bounds[1:], strict=True):
        idx = order[b0:b1]
        unit = units[idx[0]]
        prev = tails.get(unit)
        u_ts = ts[idx]
        u_x = x[idx]
        if interval > 0:
            seq = np.r_[prev.last_ts, u_ts] if prev else u_ts
            steps = np.round(np.diff(seq) / interval)
            missing += int(np.clip(steps - 1, 0, None).sum())
        hist = (
            np.vstack([np.asarray(prev.recent, dtype=np.float64).reshape(-1, len(feats)), u_x])
            if prev
            else u_x
        )
        if hist.shape[0] >= w:
            win = sliding_window_view(hist, w, axis=0)
            with np.errstate(invalid="ignore"):
                flat = (np.nanmax(win, axis=-1) - np.nanmin(win, axis=-1)) <= tol
            flat &= ~np.isnan(win).any(axis=-1)
            for j in np.flatnonzero(flat.any(axis=0)):
                stuck.setdefault(feats[j], []).append(unit)
        tails[unit] = UnitTail(
            last_ts=float(u_ts.max()), recent=hist[-(w - 1) :].tolist() if w > 1 else []
        )

    # Forget units silent for long: bounded memory, and a returning unit restarts its cadence.
    if len(ts) and interval > 0:
        horizon = float(ts.max()) - 10 * w * interval
        tails = {u: t for u, t in tails.items() if t.last_ts >= horizon}

    late = 0
    if reference.max_delay_s is not None and columns.received_at in rows:
        delay = _seconds(rows[columns.received_at]) - ts
        late = int((delay > reference.max_delay_s).sum())

    result = ChunkIntegrity(
        chunk=chunk,
        n_rows=len(rows),
        n_units=int(len(bounds) - 1),
        null_counts={f: int(n) for f, n in zip(feats, nulls.sum(axis=0), strict=True)},
        out_of_range={f: int(n) for f, n in zip(feats, outside.sum(axis=0), strict=True)},
        contract_violations=count_violations(violations),
        stuck={f: sorted(u) for f, u in stuck.items()},
        missing_rows=missing,
        late_rows=late,
    )
    return result, IntegrityState(units=tails)


def check_chunks(
    reference: IntegrityReference,
    frame: pd.DataFrame,
    *,
    columns: LogColumns,
    state: IntegrityState | None = None,
) -> tuple[list[ChunkIntegrity], IntegrityState]:
    """Check every chunk of a frame numbered by :func:`.chunking.assign_chunks`, in order."""
    current = state or IntegrityState()
    results = []
    for key, rows in frame.groupby(CHUNK_COLUMN, sort=True):
        res, current = check_chunk(
            reference,
            rows,
            current,
            columns=columns,
            chunk=int(key),
        )
        results.append(res)
    return results, current
