"""Data contract of raw AI4I 2020 records (Millwright column names)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from baselines.contracts.base import ColumnSpec, DataContract


def udi_steps(data: pd.DataFrame) -> np.ndarray:
    """Rows whose UDI is not the previous UDI + 1 (records are sampled once per process step)."""
    udi = pd.to_numeric(data["udi"], errors="coerce").to_numpy()
    step = np.r_[1.0, np.diff(udi)]
    return np.flatnonzero(step > 1)


def udi_not_increasing(data: pd.DataFrame) -> np.ndarray:
    """Rows whose UDI does not increase over the previous row."""
    udi = pd.to_numeric(data["udi"], errors="coerce").to_numpy()
    step = np.r_[1.0, np.diff(udi)]
    return np.flatnonzero(step <= 0)


def product_type_mismatch(data: pd.DataFrame) -> np.ndarray:
    """Rows whose Product ID letter disagrees with the Type column."""
    first = data["product_id"].astype(str).str[:1].to_numpy()
    return np.flatnonzero(first != data["type"].astype(str).to_numpy())


AI4I_RAW = DataContract(
    name="ai4i-raw",
    version="1.0.0",
    description=(
        "Raw AI4I records: Type in {L, M, H}; temperatures, speed, torque and tool wear inside "
        "physical bounds; 0/1 labels; UDI increasing by 1."
    ),
    columns=(
        ColumnSpec("udi", "int", min=1, unique=True, training_only=True),
        ColumnSpec("product_id", "str", regex=r"^[LMH]\d+$", training_only=True),
        ColumnSpec("type", "str", allowed=("L", "M", "H")),
        ColumnSpec("air_temperature_k", "float", min=250.0, max=350.0),
        ColumnSpec("process_temperature_k", "float", min=250.0, max=360.0),
        ColumnSpec("rotational_speed_rpm", "float", min=0.0, max=5000.0),
        ColumnSpec("torque_nm", "float", min=0.0, max=150.0),
        ColumnSpec("tool_wear_min", "float", min=0.0, max=400.0),
        ColumnSpec("machine_failure", "int", allowed=(0, 1), training_only=True),
        *(
            ColumnSpec(c, "int", allowed=(0, 1), training_only=True)
            for c in ("twf", "hdf", "pwf", "osf", "rnf")
        ),
    ),
    null_tolerance=0.01,
    frame_rules={
        "monotonic_udi": ("udi", udi_not_increasing),
        "sampling_frequency": ("udi", udi_steps),
        "product_type": ("product_id", product_type_mismatch),
    },
)

__all__ = ["AI4I_RAW", "product_type_mismatch", "udi_not_increasing", "udi_steps"]
