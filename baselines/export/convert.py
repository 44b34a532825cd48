"""Export a trained baseline to OpenVINO IR: FP32 via ``convert_model``, INT8 via NNCF PTQ.

Both IRs are checked against the torch model on the plant's test inputs before the metadata is
written: FP32 must agree within ``FP32_MAX_ABS_DIFF``, INT8 must stay within the recipe's
``int8_tolerance`` on the recipe's metric.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import torch

from baselines.export.runtime import (
    FORMAT_VERSION,
    METADATA_FILE,
    RECIPE_FILE,
    WEIGHTS_FILE,
    file_sha256,
    load_exported,
    model_file,
)
from baselines.models.pipeline import TrainedBaseline, holdout_targets
from baselines.models.training import (
    get_weights,
    predict,
    primary_target,
    score_predictions,
    weight_names,
)
from baselines.recipes import Recipe

FP32_MAX_ABS_DIFF = 1e-4
_LOWER_IS_BETTER = {"rmse", "mae", "phm08_score", "ece", "brier"}

log = logging.getLogger(__name__)


class ExportParityError(RuntimeError):
    """An exported model disagrees with the torch model beyond the allowed tolerance."""


def _calibration_inputs(trained: TrainedBaseline, n: int, seed: int) -> np.ndarray:
    """Pick the PTQ calibration subset from the training inputs.

    For the failure classifier, up to half of the subset are failures: they are ~3 % of the
    rows, yet their activations must set the quantization ranges or they get clipped.
    """
    x = trained.data.x_train
    rng = np.random.default_rng(seed)
    n = min(n, len(x))
    if trained.model.task == "failure_classification":
        y = np.asarray(primary_target(trained.data.y_train))
        pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
        k = min(len(pos), n // 2)
        idx = np.concatenate(
            [rng.choice(pos, size=k, replace=False), rng.choice(neg, size=n - k, replace=False)]
        )
    else:
        idx = rng.choice(len(x), size=n, replace=False)
    return np.ascontiguousarray(x[np.sort(idx)], dtype=np.float32)


def _convert(model: torch.nn.Module, sample_shape: tuple[int, ...]) -> ov.Model:
    example = torch.zeros((1, *sample_shape), dtype=torch.float32)
    with torch.no_grad():
        ov_model = ov.convert_model(
            model.eval(), example_input=example, input=[ov.PartialShape([-1, *sample_shape])]
        )
    ov_model.inputs[0].get_tensor().set_names({"features"})
    ov_model.outputs[0].get_tensor().set_names({"prediction"})
    return ov_model


#: Output post-processing (RUL scaling, noisy-OR, temperature, sigmoid) stays in FP32: its
#: inputs' calibration range is the training outputs', and a clipped test output is a large error.
_FP32_TYPES = ["Multiply", "Divide", "Subtract", "Log", "Exp", "Sigmoid", "SoftPlus", "Clamp"]


def _quantize(ov_model: ov.Model, calib: np.ndarray) -> ov.Model:
    import nncf  # local: NNCF is only needed when quantizing

    nncf.set_log_level(logging.ERROR)  # NNCF logs progress to stdout, which --format json owns
    # The last MatMul produces the output in model units; its rounding error is multiplied by
    # the output scale (125 cycles), so it stays in FP32 too.
    matmuls = [
        op.get_friendly_name()
        for op in ov_model.get_ordered_ops()
        if op.get_type_name() == "MatMul"
    ]
    ignored = nncf.IgnoredScope(names=matmuls[-1:], types=_FP32_TYPES, validate=False)
    # Activation ranges from the global min/max, not the default mean of per-sample extremes:
    # near-failure windows are rare in the calibration set and produce the largest activations;
    # clipping them turned an RUL of 8 cycles into 67.
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    advanced = AdvancedQuantizationParameters(
        activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX
    )
    dataset = nncf.Dataset([calib[i : i + 1] for i in range(len(calib))])
    with contextlib.redirect_stdout(sys.stderr):  # NNCF draws progress bars on stdout
        return nncf.quantize(
            ov_model,
            dataset,
            subset_size=len(calib),
            # Full bias correction: the fast variant left FD002 0.7 RMSE worse than FP32.
            fast_bias_correction=False,
            ignored_scope=ignored,
            advanced_parameters=advanced,
        )


def _metric_delta(metric: str, reference: float, candidate: float) -> float:
    """How much worse ``candidate`` is than ``reference`` (positive = worse)."""
    return candidate - reference if metric in _LOWER_IS_BETTER else reference - candidate


def export_baseline(
    trained: TrainedBaseline, directory: Path, *, int8: bool = True, strict: bool = True
) -> dict[str, Any]:
    """Write FP32 (and INT8) IR plus metadata for a trained baseline.

    Parameters
    ----------
    trained
        Output of ``train_baseline``.
    directory
        Export directory (created; files are overwritten).
    int8
        Also quantize with NNCF on ``int8_tolerance.calibration_samples`` training inputs.
    strict
        Raise ``ExportParityError`` when a parity check fails (the files stay for inspection).

    Returns
    -------
    dict
        The metadata written to ``metadata.json``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    recipe = Recipe.model_validate(trained.metadata["recipe"])
    data = trained.data
    task = recipe.task
    threshold = float(trained.metadata.get("threshold", 0.5))
    threshold = 0.5 if threshold != threshold else threshold
    y_test = holdout_targets(data)
    torch_pred = predict(trained.model, data.x_test)

    files: dict[str, dict[str, str]] = {}
    ov_model = _convert(trained.model, data.input_shape)
    ov.save_model(ov_model, directory / model_file("fp32"), compress_to_fp16=False)
    models = {"fp32": ov_model}
    if int8:
        calib = _calibration_inputs(
            trained, recipe.int8_tolerance.calibration_samples, recipe.hyperparameters.seed
        )
        models["int8"] = _quantize(ov_model, calib)
        ov.save_model(models["int8"], directory / model_file("int8"), compress_to_fp16=False)
    for precision in models:
        xml = model_file(precision)  # type: ignore[arg-type]
        bin_ = xml.removesuffix(".xml") + ".bin"
        files[precision] = {
            "xml": xml,
            "bin": bin_,
            "xml_sha256": file_sha256(directory / xml),
            "bin_sha256": file_sha256(directory / bin_),
        }
    (directory / RECIPE_FILE).write_text(json.dumps(recipe.to_dict(), indent=2, sort_keys=True))
    # The torch weights too: a federated campaign fine-tunes from them.
    named = dict(zip(weight_names(trained.model), get_weights(trained.model), strict=True))
    with (directory / WEIGHTS_FILE).open("wb") as fh:
        np.savez(fh, **named)  # type: ignore[arg-type]
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "baseline": trained.metadata["baseline"],
        "plant": trained.metadata["plant"],
        "recipe_id": recipe.recipe_id,
        "recipe_digest": recipe.digest(),
        "fingerprint": trained.metadata["fingerprint"],
        "feature_state": trained.metadata["feature_state"],
        "input": {"name": "features", "shape": [-1, *data.input_shape], "dtype": "float32"},
        "output": {**trained.metadata["output"], "tensor": "prediction", "shape": [-1]},
        "threshold": trained.metadata.get("threshold"),
        # The temperature is in the graph already; recorded so a federated export of new
        # weights from this one can keep it when no new calibration is given.
        "calibration": trained.metadata.get("calibration") or None,
        "task": task,
        "files": files,
        "metrics": {"torch": score_predictions(task, y_test, torch_pred, threshold)},
        "parity": {},
        "training": trained.metadata.get("train", {}),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {"openvino": ov.get_version()},
    }
    (directory / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))

    problems: list[str] = []
    tol = recipe.int8_tolerance
    for precision in models:
        runtime = load_exported(directory, precision)  # type: ignore[arg-type]
        pred = runtime.predict(data.x_test)
        scored = score_predictions(task, y_test, pred, threshold)
        meta["metrics"][f"ov_{precision}"] = scored
        max_diff = float(np.max(np.abs(pred - torch_pred))) if len(pred) else 0.0
        entry: dict[str, Any] = {"max_abs_diff_vs_torch": max_diff}
        if precision == "fp32":
            entry["tolerance"] = FP32_MAX_ABS_DIFF
            entry["passed"] = max_diff <= FP32_MAX_ABS_DIFF
        else:
            delta = _metric_delta(
                tol.metric, meta["metrics"]["torch"][tol.metric], scored[tol.metric]
            )
            entry.update(metric=tol.metric, degradation=delta, tolerance=tol.max_degradation)
            entry["passed"] = delta <= tol.max_degradation
        meta["parity"][precision] = entry
        if not entry["passed"]:
            problems.append(f"{precision}: {entry}")
    (directory / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    if problems and strict:
        raise ExportParityError("; ".join(problems))
    for p in problems:
        log.warning("export parity check failed: %s", p)
    return meta


__all__ = ["FP32_MAX_ABS_DIFF", "ExportParityError", "export_baseline"]
