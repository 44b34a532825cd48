"""Data contracts of the raw sources (pandera), returning structured violation reports."""

from __future__ import annotations

from baselines.contracts.ai4i import AI4I_RAW
from baselines.contracts.base import ColumnSpec, DataContract
from baselines.contracts.cmapss import CMAPSS_RAW
from baselines.contracts.report import Severity, Violation, ViolationReport

CONTRACTS: dict[str, DataContract] = {c.name: c for c in (CMAPSS_RAW, AI4I_RAW)}


def get_contract(name: str) -> DataContract:
    """Return a contract by name (``cmapss-raw``, ``ai4i-raw``).

    Raises
    ------
    KeyError
        If no contract has that name.
    """
    try:
        return CONTRACTS[name]
    except KeyError:
        raise KeyError(f"unknown data contract {name!r}; known: {sorted(CONTRACTS)}") from None


__all__ = [
    "AI4I_RAW",
    "CMAPSS_RAW",
    "CONTRACTS",
    "ColumnSpec",
    "DataContract",
    "Severity",
    "Violation",
    "ViolationReport",
    "get_contract",
]
