"""The demo runs end to end on embedded defaults, and federation never imports the hub."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from federation.demo import DEMO_PLANTS

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLWRIGHT_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.slow
def test_demo_run_exits_zero_and_prints_the_registry(tmp_path: Path) -> None:
    # Execute: twice, because re-running the demo on the same ./var must also work.
    runs = [
        subprocess.run(
            [sys.executable, "-m", "millwright", "demo", "run"],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=480,
            check=False,
        )
        for _ in range(2)
    ]

    # Assert
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
        for plant in DEMO_PLANTS:
            assert plant.id in run.stdout
        assert "demo finished" in run.stdout
        # The loop reaches the line: baselines published, champions assigned, node served them.
        assert "published cmapss-rul-cnn" in run.stdout
        assert "published ai4i-failure-mlp" in run.stdout
        assert "fd001: champion cmapss-rul-cnn" in run.stdout
        assert "cmapss FD001: 100 requests, 100 predictions, 0 fallback, 0 rejected" in run.stdout
    assert (tmp_path / "var" / "hub" / "hub.db").is_file()
    # The second run reuses the cached models instead of retraining them.
    assert "cached" in runs[1].stdout


def test_federation_does_not_import_the_hub() -> None:
    code = (
        "import sys, federation.demo, federation.hub_client; "
        "bad = [m for m in sys.modules if m == 'hub' or m.startswith('hub.')]; "
        "assert not bad, bad; assert 'torch' not in sys.modules"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
