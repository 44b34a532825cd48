"""Rule-based AI4I failure fallback: the dataset's published physical failure rules (numpy only).

- HDF (heat dissipation): process − air temperature < 8.6 K and speed < 1380 rpm.
- PWF (power): power = torque × rpm × 2π/60 outside [3500, 9000] W.
- OSF (overstrain): tool wear × torque > 11,000 / 12,000 / 13,000 min·Nm for L / M / H.
- TWF (tool wear): tool wear in the 200–240 min replacement window (the generator fails or
  replaces tools at a random wear in that window, so this flag is a warning, not a certainty).

RNF (random failure, 0.1 %) has no rule. The fallback flags a failure when any rule fires; the
score is the share of rules fired weighted towards the deterministic ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from baselines.typing import ColumnFrame, FloatArray, NDArray, Rows

HDF_TEMP_DIFF_K = 8.6
HDF_SPEED_RPM = 1380.0
PWF_MIN_W = 3500.0
PWF_MAX_W = 9000.0
OSF_LIMIT_MIN_NM: dict[str, float] = {"L": 11000.0, "M": 12000.0, "H": 13000.0}
TWF_WINDOW_MIN: tuple[float, float] = (200.0, 240.0)
RULES: tuple[str, ...] = ("hdf", "pwf", "osf", "twf")


@dataclass(frozen=True)
class RuleResult:
    """Which rule fired for each record, and the resulting failure flag."""

    fired: dict[str, NDArray]  # rule -> bool (n,)
    failure: NDArray  # bool (n,)
    score: FloatArray  # float32 (n,), in [0, 1]


def evaluate_rules(frame: ColumnFrame, *, include_twf: bool = False) -> RuleResult:
    """Apply the physical rules to raw records.

    Parameters
    ----------
    frame
        Raw AI4I columns (``type``, temperatures, ``rotational_speed_rpm``, ``torque_nm``,
        ``tool_wear_min``).
    include_twf
        Also flag tool wear inside the TWF window as a failure (more recall, many false alarms).

    Returns
    -------
    RuleResult
    """
    air = np.asarray(frame["air_temperature_k"], dtype=np.float64)
    proc = np.asarray(frame["process_temperature_k"], dtype=np.float64)
    rpm = np.asarray(frame["rotational_speed_rpm"], dtype=np.float64)
    torque = np.asarray(frame["torque_nm"], dtype=np.float64)
    wear = np.asarray(frame["tool_wear_min"], dtype=np.float64)
    types = np.asarray(frame["type"]).astype(str)
    limit = np.asarray([OSF_LIMIT_MIN_NM.get(t, min(OSF_LIMIT_MIN_NM.values())) for t in types])
    power = torque * rpm * (2.0 * math.pi / 60.0)
    fired = {
        "hdf": (proc - air < HDF_TEMP_DIFF_K) & (rpm < HDF_SPEED_RPM),
        "pwf": (power < PWF_MIN_W) | (power > PWF_MAX_W),
        "osf": wear * torque > limit,
        "twf": (wear >= TWF_WINDOW_MIN[0]) & (wear <= TWF_WINDOW_MIN[1]),
    }
    hard = fired["hdf"] | fired["pwf"] | fired["osf"]
    failure = hard | fired["twf"] if include_twf else hard
    score = np.where(hard, 1.0, np.where(fired["twf"], 0.5, 0.0)).astype(np.float32)
    return RuleResult(fired=fired, failure=failure, score=score)


def predict_rows(rows: Rows, *, include_twf: bool = False) -> RuleResult:
    """Apply the rules to line records (one mapping per record)."""
    cols = ("air_temperature_k", "process_temperature_k", "rotational_speed_rpm", "torque_nm")
    frame: dict[str, NDArray] = {
        c: np.asarray([r[c] for r in rows], dtype=np.float64) for c in cols
    }
    frame["tool_wear_min"] = np.asarray([r["tool_wear_min"] for r in rows], dtype=np.float64)
    frame["type"] = np.asarray([str(r["type"]) for r in rows])
    return evaluate_rules(frame, include_twf=include_twf)


__all__ = [
    "HDF_SPEED_RPM",
    "HDF_TEMP_DIFF_K",
    "OSF_LIMIT_MIN_NM",
    "PWF_MAX_W",
    "PWF_MIN_W",
    "RULES",
    "TWF_WINDOW_MIN",
    "RuleResult",
    "evaluate_rules",
    "predict_rows",
]
