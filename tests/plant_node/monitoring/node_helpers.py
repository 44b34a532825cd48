"""A small real RUL model for node monitoring tests, and a node set up to monitor it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from baselines.datasets import load_cmapss
from baselines.features import cmapss
from plant_node.config import NodeSettings
from plant_node.db import upgrade_database
from plant_node.serving.cache import ModelCache
from tests.plant_node.keys import BOOTSTRAP

RUL_CAP = 125.0


def build_rul_ir(out_dir: Path, state: cmapss.CmapssFeatureState, version: str = "1") -> Path:
    """Ridge regression on FD001 training windows, compiled as an OpenVINO IR (no torch).

    RUL = clamp(flat_window @ w + b, 0, 125): a real model fitted on the shipped data, small
    enough to build in a second, in the node's export layout.
    """
    frame = load_cmapss("FD001", "train")
    win = cmapss.windows(frame, state, every_cycle=True)
    y = cmapss.rul_targets(frame, state, win).astype(np.float64)[::2]
    x = win.x.reshape(len(win.x), -1).astype(np.float64)[::2]
    mean_x, mean_y = x.mean(axis=0), y.mean()
    xc = x - mean_x
    w = np.linalg.solve(xc.T @ xc + 10.0 * np.eye(x.shape[1]), xc.T @ (y - mean_y))
    b = mean_y - mean_x @ w
    out_dir.mkdir(parents=True, exist_ok=True)
    size = state.window * state.n_features
    inp = ops.parameter([-1, state.window, state.n_features], np.float32, name="x")
    flat = ops.reshape(inp, ops.constant(np.array([-1, size], np.int64)), False)
    lin = ops.add(
        ops.matmul(flat, ops.constant(w.reshape(-1, 1).astype(np.float32)), False, False),
        ops.constant(np.float32(b)),
    )
    out = ops.clamp(lin, 0.0, RUL_CAP)
    model = ov.Model([out], [inp], "fd001-ridge")
    ov.save_model(model, str(out_dir / "model.xml"), compress_to_fp16=False)
    digests = {
        f: hashlib.sha256((out_dir / f).read_bytes()).hexdigest()
        for f in ("model.xml", "model.bin")
    }
    manifest: dict[str, Any] = {
        "name": "fd001-ridge", "version": version, "baseline": "cmapss", "task": "regression",
        "xml": "model.xml", "bin": "model.bin", "sha256": digests,
        "feature_state": state.to_dict(),
    }  # fmt: skip
    (out_dir / "metadata.json").write_text(json.dumps(manifest))
    return out_dir


def monitored_node(root: Path, model_dir: Path, **overrides: Any) -> NodeSettings:
    """A migrated node serving the model, monitoring in chunks of 100 after 1,000 reference rows."""
    settings = NodeSettings(
        **{
            "plant_id": "plant-m",
            "data_dir": root,
            "outbox_enabled": False,
            "scheduler_enabled": False,
            "explain": "off",
            "monitor_chunk_size": 100,
            "monitor_reference_rows": 1000,
            "monitor_min_rows": 50,
            "monitor_pseudonym_key": "k" * 32,
            "bootstrap_keys": BOOTSTRAP,
            **overrides,
        }
    )
    upgrade_database(settings.db_url)
    cache = ModelCache(settings.cache_path)
    cache.install(model_dir)
    cache.set_champion("cmapss", "1")
    return settings


def settings_env(settings: NodeSettings) -> dict[str, str]:
    """The environment that rebuilds these settings in a CLI run (explicit fields only)."""
    from plant_node.monitoring.jobs import child_settings

    def text(value: Any) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    return {f"MILLWRIGHT_NODE_{k.upper()}": text(v) for k, v in child_settings(settings).items()}
