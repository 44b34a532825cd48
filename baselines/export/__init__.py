"""OpenVINO export of baselines; this package surface is torch-free (serving imports it).

``baselines.export.convert`` (torch, NNCF) writes export directories; ``load_exported`` reads
them back with OpenVINO and numpy only.
"""

from __future__ import annotations

from baselines.export.runtime import (
    FORMAT_VERSION,
    METADATA_FILE,
    ExportedModel,
    Precision,
    load_exported,
    read_metadata,
)

__all__ = [
    "FORMAT_VERSION",
    "METADATA_FILE",
    "ExportedModel",
    "Precision",
    "load_exported",
    "read_metadata",
]
