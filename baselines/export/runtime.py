"""Load an exported baseline with OpenVINO and numpy only (what plant serving imports).

An export directory holds ``model_fp32.xml/.bin``, ``model_int8.xml/.bin`` (when quantized),
``recipe.json`` and ``metadata.json`` (feature state, recipe id, fingerprint, metrics, input
shape, output semantics, parity results, file checksums).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from baselines.features import state_from_dict
from baselines.features.ai4i import Ai4iFeatureState
from baselines.features.cmapss import CmapssFeatureState
from baselines.typing import FloatArray

METADATA_FILE = "metadata.json"
RECIPE_FILE = "recipe.json"
#: The exchanged torch weights by name (``baselines.models.weight_names`` order), kept beside
#: the IR so an exported version can be the starting point of a federated campaign.
WEIGHTS_FILE = "weights.npz"
FORMAT_VERSION = 1
Precision = Literal["fp32", "int8"]


def model_file(precision: Precision) -> str:
    """File name of a precision's IR (``.xml``; the weights sit beside it as ``.bin``)."""
    return f"model_{precision}.xml"


def read_metadata(directory: Path) -> dict[str, Any]:
    """Read and check ``metadata.json`` of an export directory.

    Raises
    ------
    ValueError
        If the directory holds no export of a supported format version.
    """
    path = Path(directory) / METADATA_FILE
    if not path.exists():
        raise ValueError(f"{directory} holds no {METADATA_FILE}")
    meta: dict[str, Any] = json.loads(path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported export format {meta.get('format_version')!r}")
    return meta


def file_sha256(path: Path) -> str:
    """Return the sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ExportedModel:
    """A compiled OpenVINO model plus the feature state that feeds it."""

    directory: Path
    precision: Precision
    metadata: dict[str, Any]
    feature_state: CmapssFeatureState | Ai4iFeatureState
    compiled: Any  # openvino.CompiledModel

    @property
    def threshold(self) -> float | None:
        """Decision threshold of a classifier (``None`` for RUL models)."""
        value = self.metadata.get("threshold")
        return None if value is None or value != value else float(value)

    def predict(self, x: FloatArray) -> FloatArray:
        """Run the model on feature arrays; returns ``(n,)`` float32 outputs."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not len(x):
            return np.zeros(0, dtype=np.float32)
        result = self.compiled(x)[0]
        return np.asarray(result, dtype=np.float32).reshape(len(x))


def load_exported(
    directory: Path | str,
    precision: Precision = "fp32",
    *,
    threads: int | None = None,
    verify: bool = True,
    core: Any | None = None,
) -> ExportedModel:
    """Compile an exported model for the CPU.

    Parameters
    ----------
    directory
        Export directory.
    precision
        ``"fp32"`` or ``"int8"``.
    threads
        ``INFERENCE_NUM_THREADS`` for the compiled model (e.g. 1 on the line).
    verify
        Check the IR files against the sha256 recorded in the metadata.
    core
        An ``openvino.Core`` to reuse.

    Returns
    -------
    ExportedModel

    Raises
    ------
    ValueError
        If the files are missing or do not match their recorded checksums.
    """
    import openvino as ov  # local: keeps ``import baselines.export`` light

    directory = Path(directory)
    meta = read_metadata(directory)
    entry = meta.get("files", {}).get(precision)
    if entry is None:
        raise ValueError(f"{directory} has no {precision} model")
    xml = directory / entry["xml"]
    if verify:
        for kind in ("xml", "bin"):
            if file_sha256(directory / entry[kind]) != entry[f"{kind}_sha256"]:
                raise ValueError(f"{directory / entry[kind]} does not match its recorded sha256")
    core = core or ov.Core()
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    compiled = core.compile_model(core.read_model(xml), "CPU", config)
    state = state_from_dict(meta["feature_state"])
    return ExportedModel(directory, precision, meta, state, compiled)


__all__ = [
    "FORMAT_VERSION",
    "METADATA_FILE",
    "RECIPE_FILE",
    "WEIGHTS_FILE",
    "ExportedModel",
    "Precision",
    "file_sha256",
    "load_exported",
    "model_file",
    "read_metadata",
]
