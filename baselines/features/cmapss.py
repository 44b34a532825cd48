"""C-MAPSS feature pipeline (numpy only): condition-aware normalization, windows, RUL targets.

The same functions run at training time (``windows`` over whole frames) and on the line
(``transform_rows`` over the last cycles of one engine); both go through ``normalize`` and
``_window_unit`` so the arrays are identical. The fitted state is plain JSON.

Steps
-----
1. Operating conditions: the three settings are divided by ``setting_scale`` and grouped by
   leader clustering with ``condition_radius`` (deterministic; FD001/FD003 give 1 condition,
   FD002/FD004 give 6). Centroids are the group means, sorted; new rows go to the nearest one.
2. Flat sensors: among ``sensor_candidates``, a sensor whose largest within-condition standard
   deviation is below ``flat_rel_std`` times its mean magnitude carries no signal and is dropped.
3. Normalization: z-score per sensor and per condition, with that condition's mean and std.
4. Windows of ``window`` cycles per unit; a unit with fewer cycles is padded at the front by
   repeating its first normalized row (the engine is assumed to have looked like that before).
5. Target: piecewise-linear RUL, ``min(last_cycle - cycle, rul_cap)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from baselines.typing import ColumnFrame, FloatArray, IntArray, Rows

SETTINGS: tuple[str, ...] = ("setting_1", "setting_2", "setting_3")
ALL_SENSORS: tuple[str, ...] = tuple(f"s{i}" for i in range(1, 22))
#: The 14 sensors that vary in every subset; pinning them keeps every plant's input shape equal.
INFORMATIVE_SENSORS: tuple[str, ...] = (
    "s2", "s3", "s4", "s7", "s8", "s9", "s11", "s12", "s13", "s14", "s15", "s17", "s20", "s21",
)  # fmt: skip
STATE_KIND = "cmapss-features"
STATE_VERSION = 1


@dataclass(frozen=True)
class CmapssFeatureConfig:
    """Knobs of the C-MAPSS pipeline (they live in the recipe's ``features`` section)."""

    window: int = 30
    rul_cap: float = 125.0
    sensor_candidates: tuple[str, ...] = INFORMATIVE_SENSORS
    flat_rel_std: float = 1e-6
    setting_scale: tuple[float, float, float] = (1.0, 0.01, 1.0)
    condition_radius: float = 3.0
    min_std: float = 1e-6

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CmapssFeatureConfig:
        """Build a config from its JSON form (lists become tuples)."""
        kwargs = dict(data)
        for key in ("sensor_candidates", "setting_scale"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        out = asdict(self)
        out["sensor_candidates"] = list(self.sensor_candidates)
        out["setting_scale"] = list(self.setting_scale)
        return out


@dataclass(frozen=True)
class CmapssFeatureState:
    """Everything ``transform`` needs, fitted on training rows; round-trips through JSON."""

    sensors: tuple[str, ...]
    dropped_sensors: tuple[str, ...]
    setting_scale: tuple[float, ...]
    centroids: list[list[float]]
    cond_mean: list[list[float]]
    cond_std: list[list[float]]
    window: int
    rul_cap: float
    kind: str = STATE_KIND
    version: int = STATE_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        """Number of feature channels per cycle."""
        return len(self.sensors)

    @property
    def n_conditions(self) -> int:
        """Number of operating conditions found at fit time."""
        return len(self.centroids)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-serializable form."""
        out = asdict(self)
        out["sensors"] = list(self.sensors)
        out["dropped_sensors"] = list(self.dropped_sensors)
        out["setting_scale"] = list(self.setting_scale)
        return out

    def to_json(self) -> str:
        """Serialize to a JSON string (floats keep full precision)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CmapssFeatureState:
        """Rebuild from ``to_dict`` output.

        Raises
        ------
        ValueError
            If the document is not a C-MAPSS feature state of a supported version.
        """
        if data.get("kind") != STATE_KIND or data.get("version") != STATE_VERSION:
            raise ValueError(f"not a {STATE_KIND} v{STATE_VERSION} state: {data.get('kind')!r}")
        return cls(
            sensors=tuple(data["sensors"]),
            dropped_sensors=tuple(data["dropped_sensors"]),
            setting_scale=tuple(float(v) for v in data["setting_scale"]),
            centroids=[[float(v) for v in row] for row in data["centroids"]],
            cond_mean=[[float(v) for v in row] for row in data["cond_mean"]],
            cond_std=[[float(v) for v in row] for row in data["cond_std"]],
            window=int(data["window"]),
            rul_cap=float(data["rul_cap"]),
            extra=dict(data.get("extra", {})),
        )

    @classmethod
    def from_json(cls, text: str) -> CmapssFeatureState:
        """Rebuild from ``to_json`` output."""
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class Windows:
    """Model inputs and their provenance: ``x[i]`` ends at ``cycle[i]`` of ``unit[i]``."""

    x: FloatArray  # (n, window, n_features), float32
    unit: IntArray
    cycle: IntArray


def _column(frame: ColumnFrame, name: str) -> FloatArray:
    return np.asarray(frame[name], dtype=np.float64)


def _settings(frame: ColumnFrame, scale: Sequence[float]) -> FloatArray:
    points = np.stack([_column(frame, s) for s in SETTINGS], axis=1) / np.asarray(scale)
    return np.asarray(points, dtype=np.float64)


def _leader_clusters(points: FloatArray, radius: float) -> FloatArray:
    """Group points whose scaled distance to a leader is under ``radius``; return sorted means."""
    leaders: list[FloatArray] = []
    labels = np.empty(len(points), dtype=np.int64)
    # Visiting the distinct rounded points (a few hundred at most) keeps this fast and order-free.
    keys, inverse = np.unique(np.round(points, 1), axis=0, return_inverse=True)
    key_labels = np.empty(len(keys), dtype=np.int64)
    for i, key in enumerate(keys):
        if leaders:
            dist = np.linalg.norm(np.asarray(leaders) - key, axis=1)
            j = int(dist.argmin())
            if dist[j] < radius:
                key_labels[i] = j
                continue
        leaders.append(key)
        key_labels[i] = len(leaders) - 1
    labels = key_labels[inverse.reshape(-1)]
    means = np.stack([points[labels == k].mean(axis=0) for k in range(len(leaders))])
    order = np.lexsort(means.T[::-1])
    return np.asarray(means[order], dtype=np.float64)


def assign_conditions(frame: ColumnFrame, state: CmapssFeatureState) -> IntArray:
    """Return the index of the nearest operating-condition centroid for every row."""
    points = _settings(frame, state.setting_scale)
    centroids = np.asarray(state.centroids, dtype=np.float64)
    dist = ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    return np.asarray(dist.argmin(axis=1), dtype=np.int64)


def fit(frame: ColumnFrame, config: CmapssFeatureConfig | None = None) -> CmapssFeatureState:
    """Fit conditions, flat-sensor selection and per-condition statistics on training rows.

    Parameters
    ----------
    frame
        Raw C-MAPSS rows (a DataFrame or a mapping of column name to array).
    config
        Pipeline knobs; the defaults are the standard recipe's.

    Returns
    -------
    CmapssFeatureState
        The JSON-serializable state that ``transform`` and ``windows`` need.
    """
    config = config or CmapssFeatureConfig()
    points = _settings(frame, config.setting_scale)
    centroids = _leader_clusters(points, config.condition_radius)
    probe = CmapssFeatureState(
        sensors=(), dropped_sensors=(), setting_scale=config.setting_scale,
        centroids=centroids.tolist(), cond_mean=[], cond_std=[],
        window=config.window, rul_cap=config.rul_cap,
    )  # fmt: skip
    cond = assign_conditions(frame, probe)
    kept: list[str] = []
    dropped: list[str] = []
    for sensor in config.sensor_candidates:
        values = _column(frame, sensor)
        spread = max(float(values[cond == k].std()) for k in range(len(centroids)))
        scale = float(np.abs(values).mean()) or 1.0
        (kept if spread >= config.flat_rel_std * scale else dropped).append(sensor)
    if not kept:
        raise ValueError("every candidate sensor is flat; nothing to learn from")
    data = np.stack([_column(frame, s) for s in kept], axis=1)
    means = np.stack([data[cond == k].mean(axis=0) for k in range(len(centroids))])
    stds = np.stack([data[cond == k].std(axis=0) for k in range(len(centroids))])
    stds = np.maximum(stds, config.min_std)
    return CmapssFeatureState(
        sensors=tuple(kept),
        dropped_sensors=tuple(dropped),
        setting_scale=tuple(config.setting_scale),
        centroids=centroids.tolist(),
        cond_mean=means.tolist(),
        cond_std=stds.tolist(),
        window=config.window,
        rul_cap=config.rul_cap,
    )


def normalize(frame: ColumnFrame, state: CmapssFeatureState) -> FloatArray:
    """Return the per-cycle features, shape ``(n_rows, n_features)``, float64.

    Each kept sensor is z-scored with the mean and std of the row's operating condition.
    """
    cond = assign_conditions(frame, state)
    data = np.stack([_column(frame, s) for s in state.sensors], axis=1)
    mean = np.asarray(state.cond_mean, dtype=np.float64)[cond]
    std = np.asarray(state.cond_std, dtype=np.float64)[cond]
    return np.asarray((data - mean) / std, dtype=np.float64)


def _window_unit(features: FloatArray, window: int, ends: IntArray) -> FloatArray:
    """Cut windows ending at row positions ``ends`` (inclusive), front-padding short histories."""
    if len(features) < window:
        pad = np.repeat(features[:1], window - len(features), axis=0)
        offset = window - len(features)
        features = np.concatenate([pad, features], axis=0)
        ends = ends + offset
    idx = ends[:, None] - np.arange(window - 1, -1, -1)[None, :]
    idx = np.maximum(idx, 0)  # only reached by padded ends; never mixes units
    return np.asarray(features[idx], dtype=np.float64)


def _unit_slices(frame: ColumnFrame) -> tuple[IntArray, IntArray, list[IntArray]]:
    unit = np.asarray(frame["unit"], dtype=np.int64)
    cycle = np.asarray(frame["cycle"], dtype=np.int64)
    order = np.lexsort((cycle, unit))
    groups: list[IntArray] = (
        np.split(order, np.flatnonzero(np.diff(unit[order])) + 1) if len(order) else []
    )
    return unit, cycle, groups


def windows(
    frame: ColumnFrame,
    state: CmapssFeatureState,
    *,
    every_cycle: bool,
    min_cycle: int | None = None,
) -> Windows:
    """Cut model inputs from whole units.

    Parameters
    ----------
    frame
        Raw rows of one or more units (any row order).
    state
        Fitted state.
    every_cycle
        True (training): one window ending at every cycle ``>= min_cycle``. False (scoring):
        only the window ending at each unit's last cycle.
    min_cycle
        First window end when ``every_cycle``; defaults to ``state.window`` (full windows only).

    Returns
    -------
    Windows
        Float32 inputs ``(n, window, n_features)`` with their unit and end cycle.
    """
    feats = normalize(frame, state)
    unit, cycle, groups = _unit_slices(frame)
    first = state.window if min_cycle is None else min_cycle
    xs: list[FloatArray] = []
    units: list[IntArray] = []
    cycles: list[IntArray] = []
    for rows in groups:
        n = len(rows)
        if every_cycle:
            ends = np.arange(min(first, n) - 1, n, dtype=np.int64)
        else:
            ends = np.asarray([n - 1], dtype=np.int64)
        xs.append(_window_unit(feats[rows], state.window, ends))
        units.append(unit[rows][ends.clip(max=n - 1)])
        cycles.append(cycle[rows][ends.clip(max=n - 1)])
    if not xs:
        empty = np.zeros((0, state.window, state.n_features), dtype=np.float32)
        return Windows(empty, np.zeros(0, np.int64), np.zeros(0, np.int64))
    return Windows(
        x=np.concatenate(xs).astype(np.float32),
        unit=np.concatenate(units),
        cycle=np.concatenate(cycles),
    )


def transform(frame: ColumnFrame, state: CmapssFeatureState) -> FloatArray:
    """Scoring path: the window ending at each unit's last cycle, ``(n_units, window, F)``."""
    return windows(frame, state, every_cycle=False).x


def rows_to_columns(rows: Rows, columns: Sequence[str]) -> dict[str, FloatArray]:
    """Turn line records (one mapping per cycle) into the column mapping ``transform`` reads."""
    return {c: np.asarray([row[c] for row in rows], dtype=np.float64) for c in columns}


def transform_rows(rows: Rows, state: CmapssFeatureState) -> FloatArray:
    """Transform the recent cycles of one engine (serving path), oldest first -> ``(1, W, F)``.

    Records need ``cycle``, the three settings and the state's sensors; ``unit`` is optional.
    """
    if not rows:
        raise ValueError("at least one cycle is needed")
    columns = rows_to_columns(rows, ("cycle", *SETTINGS, *state.sensors))
    columns["unit"] = np.zeros(len(rows), dtype=np.float64)
    return transform(columns, state)


def rul_targets(frame: ColumnFrame, state: CmapssFeatureState, win: Windows) -> FloatArray:
    """Piecewise-linear RUL of each training window: ``min(last_cycle - cycle, rul_cap)``."""
    unit = np.asarray(frame["unit"], dtype=np.int64)
    cycle = np.asarray(frame["cycle"], dtype=np.int64)
    uniq, inv = np.unique(unit, return_inverse=True)
    last = np.zeros(len(uniq), dtype=np.int64)
    np.maximum.at(last, inv.reshape(-1), cycle)
    last_of = dict(zip(uniq.tolist(), last.tolist(), strict=True))
    remaining = np.asarray([last_of[u] for u in win.unit.tolist()], dtype=np.float64) - win.cycle
    return np.minimum(remaining, state.rul_cap).astype(np.float32)


__all__ = [
    "ALL_SENSORS",
    "INFORMATIVE_SENSORS",
    "SETTINGS",
    "CmapssFeatureConfig",
    "CmapssFeatureState",
    "Windows",
    "assign_conditions",
    "fit",
    "normalize",
    "rows_to_columns",
    "rul_targets",
    "transform",
    "transform_rows",
    "windows",
]
