"""AI4I 2020 feature pipeline (numpy only): physical derived features, scaling, Type one-hot.

Features per record, in order: the five process readings, then
``power_w = torque × rpm × 2π / 60``, ``temp_diff_k = process − air temperature``,
``wear_torque = tool wear × torque`` (min·Nm, the overstrain quantity), each z-scored with the
fitted mean and std, followed by the one-hot product Type (L, M, H). The machine-failure flag and
the five failure-mode flags (TWF, HDF, PWF, OSF, RNF) are labels and never enter the features:
they are the answer.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from baselines.typing import ColumnFrame, FloatArray, IntArray, Rows

RAW_NUMERIC: tuple[str, ...] = (
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
)
DERIVED: tuple[str, ...] = ("power_w", "temp_diff_k", "wear_torque")
TYPES: tuple[str, ...] = ("L", "M", "H")
LABEL = "machine_failure"
FAILURE_MODES: tuple[str, ...] = ("twf", "hdf", "pwf", "osf", "rnf")
#: Columns that must never be read as features.
FORBIDDEN: frozenset[str] = frozenset({LABEL, *FAILURE_MODES})
STATE_KIND = "ai4i-features"
STATE_VERSION = 1


@dataclass(frozen=True)
class Ai4iFeatureState:
    """Fitted standardization of the numeric features plus the Type vocabulary (JSON-able)."""

    numeric: tuple[str, ...]
    mean: list[float]
    std: list[float]
    types: tuple[str, ...] = TYPES
    kind: str = STATE_KIND
    version: int = STATE_VERSION

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the output columns, in order."""
        return (*self.numeric, *(f"type_{t}" for t in self.types))

    @property
    def n_features(self) -> int:
        """Width of the feature matrix."""
        return len(self.feature_names)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-serializable form."""
        out = asdict(self)
        out["numeric"] = list(self.numeric)
        out["types"] = list(self.types)
        return out

    def to_json(self) -> str:
        """Serialize to a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ai4iFeatureState:
        """Rebuild from ``to_dict`` output.

        Raises
        ------
        ValueError
            If the document is not an AI4I feature state of a supported version.
        """
        if data.get("kind") != STATE_KIND or data.get("version") != STATE_VERSION:
            raise ValueError(f"not a {STATE_KIND} v{STATE_VERSION} state: {data.get('kind')!r}")
        return cls(
            numeric=tuple(data["numeric"]),
            mean=[float(v) for v in data["mean"]],
            std=[float(v) for v in data["std"]],
            types=tuple(data["types"]),
        )

    @classmethod
    def from_json(cls, text: str) -> Ai4iFeatureState:
        """Rebuild from ``to_json`` output."""
        return cls.from_dict(json.loads(text))


def derived_columns(frame: ColumnFrame) -> dict[str, FloatArray]:
    """Return the raw numeric readings and the physical derived quantities, unscaled."""
    cols: dict[str, FloatArray] = {c: np.asarray(frame[c], dtype=np.float64) for c in RAW_NUMERIC}
    omega = cols["rotational_speed_rpm"] * (2.0 * math.pi / 60.0)  # rad/s
    cols["power_w"] = cols["torque_nm"] * omega
    cols["temp_diff_k"] = cols["process_temperature_k"] - cols["air_temperature_k"]
    cols["wear_torque"] = cols["tool_wear_min"] * cols["torque_nm"]
    return cols


def _type_onehot(frame: ColumnFrame, types: tuple[str, ...]) -> FloatArray:
    values = np.asarray(frame["type"]).astype(str)
    unknown = sorted(set(values.tolist()) - set(types))
    if unknown:
        raise ValueError(f"unknown product Type(s) {unknown}; expected one of {list(types)}")
    return np.asarray(values[:, None] == np.asarray(types)[None, :], dtype=np.float64)


def fit(frame: ColumnFrame) -> Ai4iFeatureState:
    """Fit the standardization on training rows.

    Parameters
    ----------
    frame
        Raw AI4I rows with Millwright's column names (see ``baselines.datasets.AI4I_RENAME``).

    Returns
    -------
    Ai4iFeatureState
        Mean and std of every numeric feature, in output order.
    """
    cols = derived_columns(frame)
    numeric = (*RAW_NUMERIC, *DERIVED)
    mean = [float(cols[c].mean()) for c in numeric]
    std = [max(float(cols[c].std()), 1e-9) for c in numeric]
    return Ai4iFeatureState(numeric=numeric, mean=mean, std=std)


def transform(frame: ColumnFrame, state: Ai4iFeatureState) -> FloatArray:
    """Return the float32 features ``(n_rows, state.n_features)``; training and serving call it.

    Raises
    ------
    ValueError
        If a record has a product Type outside the fitted vocabulary.
    """
    cols = derived_columns(frame)
    numeric = np.stack([cols[c] for c in state.numeric], axis=1)
    scaled = (numeric - np.asarray(state.mean)) / np.asarray(state.std)
    onehot = _type_onehot(frame, state.types)
    return np.concatenate([scaled, onehot], axis=1).astype(np.float32)


def transform_rows(rows: Rows, state: Ai4iFeatureState) -> FloatArray:
    """Transform line records (serving path): one mapping per record -> ``(n, n_features)``."""
    columns: dict[str, Any] = {
        c: np.asarray([r[c] for r in rows], dtype=np.float64) for c in RAW_NUMERIC
    }
    columns["type"] = np.asarray([str(r["type"]) for r in rows])
    return transform(columns, state)


def labels(frame: ColumnFrame) -> IntArray:
    """Return the machine-failure label as int64 (never a feature)."""
    return np.asarray(frame[LABEL], dtype=np.int64)


__all__ = [
    "DERIVED",
    "FAILURE_MODES",
    "FORBIDDEN",
    "LABEL",
    "RAW_NUMERIC",
    "TYPES",
    "Ai4iFeatureState",
    "derived_columns",
    "fit",
    "labels",
    "transform",
    "transform_rows",
]
