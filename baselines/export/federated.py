"""Export federated weights (``.npz``) as the same OpenVINO export a published baseline is.

The hub runs this as a separate process (``python -m baselines.export.federated``) because
it imports torch, which the hub process never does. The parent export supplies what the
weights alone do not say: the recipe (architecture), the input shape, the output semantics
and the feature state the serving node normalizes with. A classifier's calibration
(temperature in the graph, decision threshold in the metadata) is not in the weights: the
campaign passes the one fitted for these weights, else the parent's is kept. Only FP32 is
written: INT8 calibration needs plant data, which the hub does not have; serving falls back
to FP32.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from baselines.export.runtime import (
    FORMAT_VERSION,
    METADATA_FILE,
    RECIPE_FILE,
    WEIGHTS_FILE,
    file_sha256,
    load_exported,
    model_file,
    read_metadata,
)

#: OpenVINO may differ from torch by float rounding; outputs are in model units (cycles).
PARITY_TOLERANCE = 1e-3


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {name: f[name] for name in f.files}


def _calibration(parent: dict[str, Any], given: dict[str, float] | None) -> dict[str, Any]:
    """Return the classifier calibration to export: ``given``, else the parent export's."""
    if given is not None:
        return {"temperature": float(given["temperature"]),
                "threshold": float(given["threshold"]), "source": "campaign"}
    # Exports that predate the recorded calibration carry only the threshold (T = 1 then).
    recorded = parent.get("calibration") or {}
    threshold = parent.get("threshold")
    return {
        "temperature": float(recorded.get("temperature", 1.0)),
        "threshold": 0.5 if threshold is None else float(threshold),
        "source": "parent",
    }


def export_weights(
    weights_path: Path,
    parent_dir: Path,
    out_dir: Path,
    *,
    plant: str | None = None,
    lineage: dict[str, Any] | None = None,
    feature_state_path: Path | None = None,
    calibration: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Write an FP32 OpenVINO export of ``weights_path`` modelled on the export in ``parent_dir``.

    Parameters
    ----------
    weights_path
        ``.npz`` of named weights in ``baselines.models.weight_names`` order (what the
        Flower apps exchange and the ServerApp saves).
    parent_dir
        The parent version's export directory (``metadata.json``, ``recipe.json``).
    out_dir
        Destination directory (created; existing files are replaced).
    plant
        Plant the weights were personalized for, if any.
    lineage
        Recorded as ``metadata["federated"]``.
    feature_state_path
        JSON of the plant's own feature state (a personalized copy is only right with the
        normalization it was tuned under); the parent's when omitted.
    calibration
        Classifier only: ``temperature`` and ``threshold`` fitted for these weights (a
        federated campaign's fleet or plant calibration); the parent's when omitted.

    Returns
    -------
    dict
        The metadata written.

    Raises
    ------
    ValueError
        If OpenVINO disagrees with torch beyond ``PARITY_TOLERANCE``.
    """
    import openvino as ov
    import torch

    from baselines.export.convert import _convert
    from baselines.models import FailureClassifier, build_model, set_weights
    from baselines.recipes import Recipe

    parent = read_metadata(parent_dir)
    recipe = Recipe.model_validate_json((parent_dir / RECIPE_FILE).read_text())
    # Federated weights are one network even when the parent averaged an ensemble of them.
    recipe = recipe.model_copy(
        update={"hyperparameters": recipe.hyperparameters.model_copy(update={"ensemble": 1})}
    )
    input_shape = tuple(int(d) for d in parent["input"]["shape"][1:])
    weights = _load_npz(weights_path)
    model = build_model(recipe, input_shape, seed=recipe.hyperparameters.seed)
    set_weights(model, list(weights.values()))
    model.eval()
    calib = _calibration(parent, calibration) if isinstance(model, FailureClassifier) else None
    if isinstance(model, FailureClassifier) and calib is not None:
        model.calib_temperature.fill_(calib["temperature"])
        model.calib_threshold.fill_(calib["threshold"])

    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    ov_model = _convert(model, input_shape)
    ov.save_model(ov_model, out_dir / model_file("fp32"), compress_to_fp16=False)
    (out_dir / RECIPE_FILE).write_text(json.dumps(recipe.to_dict(), indent=2, sort_keys=True))
    shutil.copyfile(weights_path, out_dir / WEIGHTS_FILE)
    xml = model_file("fp32")
    bin_ = xml.removesuffix(".xml") + ".bin"
    fingerprint = hashlib.sha256(weights_path.read_bytes()).hexdigest()
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "baseline": parent["baseline"],
        "plant": plant if plant is not None else parent.get("plant"),
        "recipe_id": parent["recipe_id"],
        "recipe_digest": recipe.digest(),
        "fingerprint": fingerprint,
        "feature_state": (
            json.loads(feature_state_path.read_text()) if feature_state_path is not None
            else parent["feature_state"]
        ),
        "input": parent["input"],
        "output": parent["output"],
        "threshold": parent.get("threshold") if calib is None else calib["threshold"],
        "calibration": calib,
        "task": parent["task"],
        "files": {
            "fp32": {
                "xml": xml,
                "bin": bin_,
                "xml_sha256": file_sha256(out_dir / xml),
                "bin_sha256": file_sha256(out_dir / bin_),
            }
        },
        "metrics": {},
        "parity": {},
        "federated": lineage or {},
        "parent_fingerprint": parent.get("fingerprint"),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {"openvino": ov.get_version()},
    }
    (out_dir / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))

    # Parity on seeded synthetic inputs: the hub has no plant data to check with.
    x = np.random.default_rng(0).normal(size=(32, *input_shape)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).reshape(len(x)).numpy()
    got = load_exported(out_dir, "fp32").predict(x)
    max_diff = float(np.max(np.abs(got - expected)))
    passed = max_diff <= PARITY_TOLERANCE * max(1.0, float(np.max(np.abs(expected))))
    meta["parity"]["fp32"] = {"max_abs_diff_vs_torch": max_diff, "passed": passed,
                              "inputs": "32 seeded standard-normal samples"}
    (out_dir / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    if not passed:
        raise ValueError(f"OpenVINO FP32 differs from torch by {max_diff:.3g}")
    return meta


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m baselines.export.federated JOBS.json``.

    ``JOBS.json`` is a list of ``{"weights", "parent", "out", "plant", "lineage",
    "feature_state", "calibration"}`` objects (the last two optional);
    all are exported in this one process, so torch and OpenVINO load once.
    """
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("jobs", type=Path, help="JSON list of export jobs")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    out = []
    for job in json.loads(args.jobs.read_text()):
        meta = export_weights(
            Path(job["weights"]), Path(job["parent"]), Path(job["out"]),
            plant=job.get("plant"), lineage=job.get("lineage"),
            feature_state_path=Path(job["feature_state"]) if job.get("feature_state") else None,
            calibration=job.get("calibration"),
        )
        out.append({"out": job["out"], "fingerprint": meta["fingerprint"],
                    "parity": meta["parity"]})
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["PARITY_TOLERANCE", "WEIGHTS_FILE", "export_weights", "main"]
