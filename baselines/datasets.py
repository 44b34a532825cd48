"""The one loader of the shipped data sets (C-MAPSS, AI4I 2020), with checksum verification.

Every file is read from the gzip copies in ``baselines/data/``; the sha256 of the decompressed
bytes must match ``baselines/data/checksums.json`` before anything is parsed. Nothing is
downloaded.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).parent / "data"

CMAPSS_SUBSETS: tuple[str, ...] = ("FD001", "FD002", "FD003", "FD004")
CMAPSS_SETTINGS: tuple[str, ...] = ("setting_1", "setting_2", "setting_3")
CMAPSS_SENSORS: tuple[str, ...] = tuple(f"s{i}" for i in range(1, 22))
CMAPSS_COLUMNS: tuple[str, ...] = ("unit", "cycle", *CMAPSS_SETTINGS, *CMAPSS_SENSORS)

#: AI4I header as published -> Millwright's column name.
AI4I_RENAME: dict[str, str] = {
    "UDI": "udi",
    "Product ID": "product_id",
    "Type": "type",
    "Air temperature [K]": "air_temperature_k",
    "Process temperature [K]": "process_temperature_k",
    "Rotational speed [rpm]": "rotational_speed_rpm",
    "Torque [Nm]": "torque_nm",
    "Tool wear [min]": "tool_wear_min",
    "Machine failure": "machine_failure",
    "TWF": "twf",
    "HDF": "hdf",
    "PWF": "pwf",
    "OSF": "osf",
    "RNF": "rnf",
}
AI4I_FAILURE_MODES: tuple[str, ...] = ("twf", "hdf", "pwf", "osf", "rnf")
AI4I_TYPES: tuple[str, ...] = ("L", "M", "H")

Split = Literal["train", "test"]


class DatasetChecksumError(RuntimeError):
    """A shipped data file does not hash to the value recorded in ``checksums.json``."""


@functools.cache
def _manifest() -> dict[str, dict[str, object]]:
    manifest: dict[str, dict[str, object]] = json.loads(
        (DATA_DIR / "checksums.json").read_text(encoding="utf-8")
    )
    return manifest


@functools.cache
def read_verified(name: str) -> bytes:
    """Return the decompressed bytes of one shipped file after checking its sha256.

    Parameters
    ----------
    name
        Original file name, e.g. ``"train_FD001.txt"`` or ``"ai4i2020.csv"``.

    Returns
    -------
    bytes
        The original (decompressed) file content.

    Raises
    ------
    DatasetChecksumError
        If the file is unknown or its content does not match the recorded sha256.
    """
    entry = _manifest().get(f"{name}.gz")
    if entry is None:
        raise DatasetChecksumError(f"{name} is not a shipped data file")
    raw = gzip.decompress((DATA_DIR / f"{name}.gz").read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != entry["original_sha256"]:
        raise DatasetChecksumError(
            f"{name}: sha256 {digest} does not match the recorded {entry['original_sha256']}"
        )
    return raw


def verify_checksums() -> dict[str, str]:
    """Check every shipped file; return ``{original name: sha256}``.

    Raises
    ------
    DatasetChecksumError
        On the first file whose content does not match.
    """
    out: dict[str, str] = {}
    for entry in _manifest().values():
        name = str(entry["original"])
        read_verified(name)
        out[name] = str(entry["original_sha256"])
    return out


def _check_subset(subset: str) -> None:
    if subset not in CMAPSS_SUBSETS:
        raise ValueError(f"unknown C-MAPSS subset {subset!r}; expected one of {CMAPSS_SUBSETS}")


@functools.cache
def _cmapss(subset: str, split: str) -> pd.DataFrame:
    return _parse_cmapss(read_verified(f"{split}_{subset}.txt"))


def _parse_cmapss(raw: bytes) -> pd.DataFrame:
    frame = pd.read_csv(io.BytesIO(raw), sep=r"\s+", header=None, names=list(CMAPSS_COLUMNS))
    return frame.astype({"unit": "int64", "cycle": "int64"})


def _plant_file(data_dir: Path, name: str) -> bytes:
    """Read ``name`` (or ``name.gz``) from a plant's own data directory."""
    for candidate in (data_dir / f"{name}.gz", data_dir / name):
        if candidate.is_file():
            raw = candidate.read_bytes()
            return gzip.decompress(raw) if candidate.suffix == ".gz" else raw
    raise FileNotFoundError(f"{data_dir} holds no {name} (nor {name}.gz)")


def load_cmapss(
    subset: str, split: Split = "train", *, data_dir: Path | None = None
) -> pd.DataFrame:
    """Load one C-MAPSS subset as a frame with named columns.

    Parameters
    ----------
    subset
        ``"FD001"`` .. ``"FD004"``.
    split
        ``"train"`` (run to failure) or ``"test"`` (stops before failure).
    data_dir
        A plant's own data directory holding ``{split}_{subset}.txt[.gz]`` (what a plant
        node trains on); the shipped, checksum-verified copy when omitted.

    Returns
    -------
    pandas.DataFrame
        Columns ``unit, cycle, setting_1..3, s1..s21``; ``unit`` and ``cycle`` are int64,
        the rest float64. A fresh copy on every call.
    """
    _check_subset(subset)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if data_dir is not None:
        return _parse_cmapss(_plant_file(data_dir, f"{split}_{subset}.txt"))
    return _cmapss(subset, split).copy()


def load_cmapss_rul(subset: str, *, data_dir: Path | None = None) -> np.ndarray:
    """Return the true RUL after the last cycle of each test unit (unit 1 first), as int64."""
    _check_subset(subset)
    name = f"RUL_{subset}.txt"
    raw = _plant_file(data_dir, name) if data_dir is not None else read_verified(name)
    return np.loadtxt(io.BytesIO(raw), dtype=np.int64).reshape(-1)


def cmapss_subset_in(data_dir: Path) -> str | None:
    """Return the C-MAPSS subset whose training file a plant's data directory holds (if one)."""
    found = [
        s for s in CMAPSS_SUBSETS
        if any((data_dir / f"train_{s}.txt{ext}").is_file() for ext in (".gz", ""))
    ]
    return found[0] if len(found) == 1 else None


def write_cmapss_plant_files(subset: str, data_dir: Path) -> list[Path]:
    """Copy one subset's shipped train/test/RUL files into a plant's own data directory.

    This is how the demo gives each plant node its local history: afterwards the plant
    reads only ``data_dir``, never the other subsets.
    """
    _check_subset(subset)
    data_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for name in (f"train_{subset}.txt", f"test_{subset}.txt", f"RUL_{subset}.txt"):
        read_verified(name)  # the copy starts from verified bytes
        target = data_dir / f"{name}.gz"
        target.write_bytes((DATA_DIR / f"{name}.gz").read_bytes())
        out.append(target)
    return out


@functools.cache
def _ai4i() -> pd.DataFrame:
    # The file starts with a UTF-8 byte-order mark; utf-8-sig strips it so "UDI" parses cleanly.
    text = read_verified("ai4i2020.csv").decode("utf-8-sig")
    frame = pd.read_csv(io.StringIO(text))
    missing = set(AI4I_RENAME) - set(frame.columns)
    if missing:
        raise DatasetChecksumError(f"ai4i2020.csv lacks columns {sorted(missing)}")
    frame = frame.rename(columns=AI4I_RENAME)
    return frame.astype({"product_id": "str", "type": "str"})


def load_ai4i() -> pd.DataFrame:
    """Load AI4I 2020 with snake_case columns (see ``AI4I_RENAME``); a fresh copy per call."""
    return _ai4i().copy()


__all__ = [
    "AI4I_FAILURE_MODES",
    "AI4I_RENAME",
    "AI4I_TYPES",
    "CMAPSS_COLUMNS",
    "CMAPSS_SENSORS",
    "CMAPSS_SETTINGS",
    "CMAPSS_SUBSETS",
    "DatasetChecksumError",
    "load_ai4i",
    "load_cmapss",
    "load_cmapss_rul",
    "read_verified",
    "verify_checksums",
]
