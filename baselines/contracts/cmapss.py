"""Data contract of raw C-MAPSS rows (``unit cycle setting_1..3 s1..s21``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from baselines.contracts.base import ColumnSpec, DataContract

#: Plausible physical envelope per column: every FD00x train/test value lies well inside.
RANGES: dict[str, tuple[float, float]] = {
    "setting_1": (-1.0, 45.0),  # altitude, kft (data -0.009..42.0)
    "setting_2": (-0.05, 1.0),  # Mach number (data -0.0006..0.842)
    "setting_3": (0.0, 110.0),  # throttle resolver angle, % (data 60..100)
    "s1": (400.0, 560.0),  # T2, °R (445..518.7)
    "s2": (500.0, 700.0),  # T24, °R (535..645)
    "s3": (1100.0, 1750.0),  # T30, °R (1241..1617)
    "s4": (900.0, 1600.0),  # T50, °R (1024..1441)
    "s5": (1.0, 20.0),  # P2, psia (3.9..14.6)
    "s6": (1.0, 28.0),  # P15, psia (5.7..21.6)
    "s7": (20.0, 700.0),  # P30, psia (136..571)
    "s8": (1700.0, 2600.0),  # Nf, rpm (1915..2389)
    "s9": (7500.0, 9700.0),  # Nc, rpm (7985..9245)
    "s10": (0.8, 1.5),  # epr (0.93..1.32)
    "s11": (30.0, 55.0),  # Ps30, psia (36.0..48.5)
    "s12": (20.0, 650.0),  # phi, pps/psi (128..537)
    "s13": (1900.0, 2500.0),  # NRf, rpm (2028..2390)
    "s14": (7700.0, 8450.0),  # NRc, rpm (7846..8294)
    "s15": (7.0, 12.0),  # BPR (8.16..11.07)
    "s16": (0.0, 0.05),  # farB (0.02..0.03)
    "s17": (250.0, 450.0),  # htBleed (302..400)
    "s18": (1700.0, 2600.0),  # Nf_dmd, rpm (1915..2388)
    "s19": (80.0, 105.0),  # PCNfR_dmd (84.9..100)
    "s20": (2.0, 50.0),  # W31 (10.2..39.9)
    "s21": (1.0, 30.0),  # W32 (6.0..24.0)
}


def _cycle_steps(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    # np.asarray, not .to_numpy(): the serving gate passes already-checked numpy columns.
    unit = np.asarray(pd.to_numeric(data["unit"], errors="coerce"))
    cycle = np.asarray(pd.to_numeric(data["cycle"], errors="coerce"))
    same_unit = np.r_[False, unit[1:] == unit[:-1]]
    step = np.r_[np.nan, np.diff(cycle)]
    return same_unit, step


def non_monotonic_cycles(data: pd.DataFrame) -> np.ndarray:
    """Rows whose cycle does not increase over the previous row of the same unit."""
    same_unit, step = _cycle_steps(data)
    return np.flatnonzero(same_unit & (step <= 0))


def sampling_gaps(data: pd.DataFrame) -> np.ndarray:
    """Rows that skip cycles: one record per operating cycle is expected (step of exactly 1)."""
    same_unit, step = _cycle_steps(data)
    return np.flatnonzero(same_unit & (step > 1))


CMAPSS_RAW = DataContract(
    name="cmapss-raw",
    version="1.0.0",
    description=(
        "Raw C-MAPSS cycles: 26 numeric columns, positive unit and cycle, values inside the "
        "physical envelope, cycles strictly increasing by exactly 1 within each unit."
    ),
    columns=(
        ColumnSpec("unit", "int", min=1),
        ColumnSpec("cycle", "int", min=1),
        *(ColumnSpec(c, "float", min=lo, max=hi) for c, (lo, hi) in RANGES.items()),
    ),
    null_tolerance=0.01,
    frame_rules={
        "monotonic_cycles": ("cycle", non_monotonic_cycles),
        "sampling_frequency": ("cycle", sampling_gaps),
    },
)

__all__ = ["CMAPSS_RAW", "RANGES", "non_monotonic_cycles", "sampling_gaps"]
