"""Build tiny OpenVINO IRs for tests with opset APIs (no torch): score = sigmoid(x @ w + b)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
from openvino import opset13 as ops


def build_logistic_ir(
    out_dir: Path,
    weights: Sequence[float],
    bias: float = 0.0,
    *,
    version: str = "1",
    baseline: str = "toy",
    name: str = "toy-logistic",
    extra: dict[str, Any] | None = None,
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    w = np.asarray(weights, dtype=np.float32).reshape(-1, 1)
    x = ops.parameter([-1, w.shape[0]], np.float32, name="x")
    logits = ops.add(ops.matmul(x, ops.constant(w), False, False), ops.constant(np.float32(bias)))
    model = ov.Model([ops.sigmoid(logits)], [x], name)
    ov.save_model(model, str(out_dir / "model.xml"), compress_to_fp16=False)
    digests = {
        f: hashlib.sha256((out_dir / f).read_bytes()).hexdigest()
        for f in ("model.xml", "model.bin")
    }
    manifest = {
        "name": name,
        "version": version,
        "baseline": baseline,
        "task": "classification",
        "xml": "model.xml",
        "bin": "model.bin",
        "sha256": digests,
        "input_names": [f"x{i}" for i in range(w.shape[0])],
        **(extra or {}),
    }
    (out_dir / "metadata.json").write_text(json.dumps(manifest))
    return out_dir


def logistic(x: np.ndarray, weights: Sequence[float], bias: float = 0.0) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ np.asarray(weights) + bias)))


def rows_featurizer(names: Sequence[str]) -> Any:
    def featurize(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.asarray([[float(r[n]) for n in names] for r in rows], dtype=np.float32)

    return featurize


def build_window_ir(
    out_dir: Path,
    window: int,
    n_features: int,
    *,
    version: str = "1",
    baseline: str = "cmapss",
    name: str = "toy-rul",
    seed: int = 0,
    extra: dict[str, Any] | None = None,
) -> Path:
    """A RUL-like regressor over a (window, features) input: 60 + 40 * tanh(flat @ w)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    w = (np.random.default_rng(seed).normal(size=(window * n_features, 1)) / 20).astype(np.float32)
    x = ops.parameter([-1, window, n_features], np.float32, name="x")
    flat = ops.reshape(x, ops.constant(np.array([-1, window * n_features], np.int64)), False)
    z = ops.tanh(ops.matmul(flat, ops.constant(w), False, False))
    y = ops.add(ops.multiply(z, ops.constant(np.float32(40.0))), ops.constant(np.float32(60.0)))
    ov.save_model(ov.Model([y], [x], name), str(out_dir / "model.xml"), compress_to_fp16=False)
    digests = {
        f: hashlib.sha256((out_dir / f).read_bytes()).hexdigest()
        for f in ("model.xml", "model.bin")
    }
    manifest = {
        "name": name, "version": version, "baseline": baseline, "task": "regression",
        "xml": "model.xml", "bin": "model.bin", "sha256": digests, **(extra or {}),
    }  # fmt: skip
    (out_dir / "metadata.json").write_text(json.dumps(manifest))
    return out_dir


def as_baselines_export(model_dir: Path, feature_state: dict[str, Any]) -> Path:
    """Rewrite a test IR directory into the ``baselines.export`` layout (format_version 1)."""
    for ext in ("xml", "bin"):
        (model_dir / f"model.{ext}").rename(model_dir / f"model_fp32.{ext}")
    sha = {
        f"{ext}_sha256": hashlib.sha256((model_dir / f"model_fp32.{ext}").read_bytes()).hexdigest()
        for ext in ("xml", "bin")
    }
    meta = {
        "format_version": 1,
        "feature_state": feature_state,
        "threshold": 0.5,
        "files": {"fp32": {"xml": "model_fp32.xml", "bin": "model_fp32.bin", **sha}},
    }
    (model_dir / "metadata.json").write_text(json.dumps(meta))
    return model_dir
