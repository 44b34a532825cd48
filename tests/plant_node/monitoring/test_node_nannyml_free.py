"""The scheduled monitoring job runs nannyml in a child process, never in the serving one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.plant_node.monitoring.node_helpers import monitored_node
from tests.plant_node.outbox.procs import REPO, child_env

OVERRIDES = {
    "plant_id": "probe",
    "outbox_enabled": False,
    "scheduler_enabled": False,
    "explain": "off",
    "monitor_chunk_size": 20,
    "monitor_reference_rows": 100,
    "monitor_min_rows": 10,
    "monitor_pseudonym_key": "p" * 32,
}


def test_serving_process_never_imports_nannyml(tmp_path: Path, rul_model_dir: Path) -> None:
    monitored_node(tmp_path, rul_model_dir, **OVERRIDES)

    proc = subprocess.run(
        [sys.executable, "-m", "tests.plant_node.monitoring.nannyml_free_probe",
         str(tmp_path), json.dumps(OVERRIDES)],
        cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["predict_ok"] and report["outcomes"] == 201
    (summary,) = report["job"]["summaries"]
    assert report["job"]["returncode"] == 0
    assert summary["status"] == "monitored" and summary["chunks"], summary
    assert all(c["estimated"] is not None for c in summary["chunks"])  # DLE ran in the child
    assert report["chunks"] == len(summary["chunks"])
    assert report["nannyml"] is False and report["lightgbm"] is False
