"""The real node service serves both baselines without ever importing torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from plant_node.config import NodeSettings
from tests.plant_node.outbox.procs import REPO, child_env


def test_serving_process_never_imports_torch(
    served_settings: NodeSettings,
    tmp_path: Path,
    ai4i_records: list[dict[str, Any]],
    cmapss_records: list[dict[str, Any]],
) -> None:
    requests = [
        {"baseline": "ai4i", "record": ai4i_records[0]},
        {"baseline": "ai4i", "records": ai4i_records[:10]},
        {"baseline": "cmapss", "records": cmapss_records},
    ]
    records_file = tmp_path / "requests.json"
    records_file.write_text(json.dumps(requests))

    proc = subprocess.run(
        [sys.executable, "-m", "tests.plant_node.serving.torch_free_probe",
         str(served_settings.data_path), str(records_file)],
        cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["statuses"] == [200, 200, 200]
    assert report["ready"]["serving"]["baselines"]["ai4i"]["current"] == "1"
    assert report["ready"]["serving"]["baselines"]["cmapss"]["current"] == "1"
    assert report["torch"] is False and report["nncf"] is False
    print("node serving peak RSS MB", report["rss_mb"])
    assert report["rss_mb"] < 350
