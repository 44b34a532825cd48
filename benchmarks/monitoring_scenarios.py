"""The monitoring scenario suite: feed orders, injected changes at random change points, scoring.

The benchmark (:mod:`benchmarks.bench_monitoring`) serves real rows through the real models;
this module decides *what* is fed and *how it is scored*, for any dataset:

- **Feed orders.** ``unit_ordered``: units one after another (a plant that runs its engines
  one at a time; for AI4I the line's production order, one tool life after another);
  ``interleaved``: a running fleet where every chunk mixes many units (for AI4I, parts in
  shuffled order). The same stable rows are fed in both orders.
- **Changes** (:data:`SCENARIOS`), injected from a change point drawn at random per seed
  (the first row of a random chunk, with at least :data:`BEFORE` chunks before and
  :data:`AFTER` after), on features drawn at random per seed: a 1 sigma step, a ramp that
  reaches 1 sigma after 10 chunks, a stuck sensor, 10 % nulls, a change of engineering unit,
  a correlated shift of several features (the anchor and its most correlated features move
  1 sigma together over two chunks, like a season), a process change that moves the label
  relationship (inputs unchanged), and a change of product mix.
- **Scoring as the node's job runs.** Every stream goes through ``run_monitor(...,
  hold_partial=True)``, as the scheduled job calls it, so the incomplete last chunk is held
  back. An alert counts as a detection only if it is raised at or after the change chunk
  and names a rule or feature (:func:`alert_name`) that the stable stream of the same feed
  order and seed never raised; an alert raised before the change chunk is a false alarm.
  The concept-shift guard counts as detector ``guard:concept_shift`` on the first chunk it
  flags.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from plant_node.monitoring.alerts import Alert, AlertKind
from plant_node.monitoring.chunking import CHUNK_COLUMN, assign_chunks
from plant_node.monitoring.engine import ChunkResult
from plant_node.monitoring.guards import CONCEPT_SHIFT_KEY

FEEDS: tuple[str, ...] = ("unit_ordered", "interleaved")
SCENARIOS: tuple[str, ...] = (
    "step",
    "ramp",
    "stuck",
    "nulls",
    "unit_change",
    "seasonal",
    "process_change",
    "product_mix",
)
#: Delay targets, in chunks (scenarios without one are reported only).
TARGETS: dict[str, int] = {
    "step": 1,
    "stuck": 1,
    "nulls": 1,
    "unit_change": 1,
    "ramp": 3,
    "seasonal": 2,
}
BEFORE, AFTER = 3, 6
STEP_SIGMAS = 1.0
RAMP_CHUNKS_TO_1_SIGMA = 10
SEASON_ONSET_CHUNKS = 2
SEASON_FEATURES = 3
NULL_SHARE = 0.1
#: Factors of common engineering-unit mix-ups (Rankine/Kelvin, pound/kilogram, rpm/rad s^-1).
UNIT_FACTORS: tuple[float, ...] = (5 / 9, 9 / 5, 0.4536, 2.2046, 0.1047)


@dataclass(frozen=True)
class Injection:
    """What a scenario changed, and from when."""

    scenario: str
    change_chunk: int
    change_time: pd.Timestamp
    detail: dict[str, Any] = field(default_factory=dict)


def unit_ordered(
    frame: pd.DataFrame, *, unit: str, order: str, seed: int, t0: str, step_s: float
) -> pd.DataFrame:
    """Feed units one after another (in random unit order), one row every ``step_s``."""
    rng = np.random.default_rng(seed)
    units = rng.permutation(frame[unit].unique())
    rank = pd.Series(np.arange(len(units)), index=units)
    out = frame.assign(_rank=frame[unit].map(rank)).sort_values(["_rank", order], kind="stable")
    out = out.drop(columns="_rank").reset_index(drop=True)
    out["timestamp"] = pd.Timestamp(t0) + pd.to_timedelta(np.arange(len(out)) * step_s, unit="s")
    return out


def chunk_starts(stream: pd.DataFrame, chunk_size: int) -> list[pd.Timestamp]:
    """First timestamp of each complete chunk, as the node's chunking cuts the stream."""
    chunks = assign_chunks(stream, timestamp="timestamp", size=chunk_size)
    sizes = chunks.groupby(CHUNK_COLUMN).size()
    firsts = chunks.groupby(CHUNK_COLUMN)["timestamp"].min()
    return [pd.Timestamp(firsts[c]) for c in sizes.index if sizes[c] >= chunk_size]


def draw_change(n_chunks: int, rng: np.random.Generator) -> int:
    """Draw a change chunk with :data:`BEFORE` chunks before it and :data:`AFTER` after."""
    hi = max(BEFORE, n_chunks - AFTER)
    return int(rng.integers(BEFORE, hi + 1))


def _rows_after(stream: pd.DataFrame, t: pd.Timestamp) -> np.ndarray:
    after: np.ndarray = (stream["timestamp"] >= t).to_numpy()
    return after


def _progress(stream: pd.DataFrame, after: np.ndarray, chunk_size: int) -> np.ndarray:
    """Chunks elapsed since the change, per row (0 before), counted in rows."""
    pos = np.cumsum(after) * after
    out: np.ndarray = pos / chunk_size
    return out


def inject(
    scenario: str,
    stream: pd.DataFrame,
    *,
    change_time: pd.Timestamp,
    features: Sequence[str],
    stats: Mapping[str, tuple[float, float]],
    correlation: pd.DataFrame,
    rng: np.random.Generator,
    unit: str,
    chunk_size: int,
    relabel: Callable[[pd.DataFrame, np.ndarray, np.random.Generator], pd.Series] | None = None,
    replacement: Callable[[pd.DataFrame, np.ndarray, np.random.Generator], pd.DataFrame]
    | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Apply one scenario to a stable stream from ``change_time`` on.

    Parameters
    ----------
    scenario
        One of :data:`SCENARIOS`.
    stream
        The stable stream, sorted by time (not modified).
    change_time
        First affected timestamp.
    features
        Features a fault may hit (drawn from at random).
    stats
        Reference ``(mean, std)`` per feature: sizes the shifts.
    correlation
        Reference correlation of the features: picks the features of a seasonal shift.
    rng
        The seed's generator.
    unit
        Unit column (a stuck sensor holds each unit's last reading).
    chunk_size
        Rows per chunk (ramps and onsets are counted in chunks of rows).
    relabel
        Dataset-specific process change: new labels for the rows after the change.
    replacement
        Dataset-specific product-mix change: the rows that replace those after the change.

    Returns
    -------
    tuple[pandas.DataFrame, dict]
        The changed stream and what was changed.
    """
    out = stream.copy()
    out[list(features)] = out[list(features)].astype(np.float64)  # counters may be integers
    after = _rows_after(out, change_time)
    feature = str(features[int(rng.integers(len(features)))])
    std = stats[feature][1]
    sign = 1.0 if rng.random() < 0.5 else -1.0
    detail: dict[str, Any] = {}
    if scenario == "step":
        out.loc[after, feature] += sign * STEP_SIGMAS * std
        detail = {"feature": feature, "sigmas": sign * STEP_SIGMAS}
    elif scenario == "ramp":
        ramp = _progress(out, after, chunk_size) / RAMP_CHUNKS_TO_1_SIGMA
        out[feature] = out[feature] + sign * std * ramp
        detail = {"feature": feature, "sigmas_per_chunk": sign / RAMP_CHUNKS_TO_1_SIGMA}
    elif scenario == "stuck":
        held = out[feature].where(~after)
        # each unit holds its last reading before the change (a unit that starts later, its
        # first reading)
        out[feature] = (
            held.groupby(out[unit])
            .ffill()
            .fillna(out[feature].groupby(out[unit]).transform("first"))
        )
        detail = {"feature": feature}
    elif scenario == "nulls":
        hit = after & (rng.random(len(out)) < NULL_SHARE)
        out.loc[hit, feature] = np.nan
        detail = {"feature": feature, "share": NULL_SHARE}
    elif scenario == "unit_change":
        factor = float(UNIT_FACTORS[int(rng.integers(len(UNIT_FACTORS)))])
        out.loc[after, feature] *= factor
        detail = {"feature": feature, "factor": round(factor, 4)}
    elif scenario == "seasonal":
        corr = correlation[feature].drop(feature).abs().sort_values(ascending=False)
        group = [feature, *corr.index[: SEASON_FEATURES - 1]]
        onset = np.clip(_progress(out, after, chunk_size) / SEASON_ONSET_CHUNKS, 0, 1)
        for f in group:
            direction = sign * (1.0 if correlation.loc[feature, f] >= 0 else -1.0)
            out[f] = out[f] + direction * STEP_SIGMAS * stats[f][1] * onset
        detail = {"features": group, "sigmas": sign * STEP_SIGMAS}
    elif scenario == "process_change":
        if relabel is None:
            raise ValueError("process_change needs a relabel function")
        out.loc[after, "label"] = relabel(out, after, rng).to_numpy()
        detail = {"labels": "relationship changed, inputs unchanged"}
    elif scenario == "product_mix":
        if replacement is None:
            raise ValueError("product_mix needs a replacement function")
        new = replacement(out, after, rng)
        out = pd.concat([out[~after], new], ignore_index=True)
        detail = {"rows_after": len(new)}
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    return out, detail


def alert_name(alert: Alert) -> str:
    """Name an alert by its rule and, for drift, the feature it names first."""
    if alert.kind is AlertKind.DRIFT and alert.top_features:
        return f"{alert.key}@{alert.top_features[0][0]}"
    return alert.key


def _raised(results: Sequence[ChunkResult]) -> list[Alert]:
    return [e.alert for r in results for e in r.events if e.type.value == "raised"]


def _concept_chunk(results: Sequence[ChunkResult]) -> int | None:
    return next((r.chunk for r in results if CONCEPT_SHIFT_KEY in r.unreliable), None)


def stable_names(results: Sequence[ChunkResult]) -> set[str]:
    """Names of every alert (and the concept guard) a stable stream raised."""
    names = {alert_name(a) for a in _raised(results)}
    if _concept_chunk(results) is not None:
        names.add("guard:concept_shift")
    return names


def score(
    results: Sequence[ChunkResult], *, change_chunk: int | None, stable: set[str]
) -> dict[str, Any]:
    """Score one stream: detection delay, detectors that fired, false alarms.

    Parameters
    ----------
    results
        The monitor's chunks (held-back partial chunk excluded, as the job runs).
    change_chunk
        First changed chunk; ``None`` for a stable stream.
    stable
        :func:`stable_names` of the stable stream of the same feed order and seed.

    Returns
    -------
    dict
        ``detection_delay_chunks`` (``None``: missed or stable), ``detectors`` (first
        chunk each fired, relative to the change), ``false_alarms``, ``pre_change_chunks``.
    """
    alerts = _raised(results)
    false = [a for a in alerts if change_chunk is None or a.raised_chunk < change_chunk]
    fired: dict[str, int] = {}
    if change_chunk is not None:
        for a in alerts:
            name = alert_name(a)
            if a.raised_chunk < change_chunk or name in stable:
                continue
            fired.setdefault(name, a.raised_chunk - change_chunk)
        concept = _concept_chunk(results)
        if concept is not None and concept >= change_chunk and "guard:concept_shift" not in stable:
            fired.setdefault("guard:concept_shift", concept - change_chunk)
    delay = min(fired.values(), default=None)
    pre = sum(1 for r in results if change_chunk is None or r.chunk < change_chunk)
    return {
        "change_chunk": change_chunk,
        "n_chunks": len(results),
        "detection_delay_chunks": delay,
        "detectors": dict(sorted(fired.items(), key=lambda kv: kv[1])),
        "false_alarms": len(false),
        "false_alarm_log": [a.describe() for a in false],
        "pre_change_chunks": pre,
    }


def estimation_pairs(results: Sequence[ChunkResult]) -> list[dict[str, Any]]:
    """Per chunk with a realized first metric: estimate, band, realized, reliable or not."""
    out = []
    for r in results:
        if not r.performance:
            continue
        p = r.performance[0]
        if p.realized is None or not math.isfinite(p.realized):
            continue
        out.append(
            {
                "chunk": r.chunk,
                "estimated": p.estimated,
                "lower": p.lower,
                "upper": p.upper,
                "realized": p.realized,
                "reliable": not r.unreliable,
            }
        )
    return out


__all__ = [
    "FEEDS",
    "SCENARIOS",
    "TARGETS",
    "Injection",
    "alert_name",
    "chunk_starts",
    "draw_change",
    "estimation_pairs",
    "inject",
    "score",
    "stable_names",
    "unit_ordered",
]
