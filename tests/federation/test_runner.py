"""The runner's side of the results file, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from federation.flower.control import RunState
from federation.flower.results import RunRecorder
from federation.flower.runner import reconcile_results
from federation.schemas.federated_run import FailureCode, RunOutcome


def _running(path: Path) -> None:
    RunRecorder.start(path, baseline="toy-linear", strategy="fedavg", rounds_planned=2,
                      min_participants=2)


def test_a_stopped_run_is_recorded_as_failed(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    _running(path)

    result = reconcile_results(path, RunState(1, "finished", "stopped", ""))

    assert result.status == RunOutcome.FAILED
    assert result.failure.code == FailureCode.STOPPED
    assert "finished:stopped" in path.read_text()


def test_a_serverapp_that_died_is_recorded_as_a_lost_run(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    _running(path)

    # What Flower reports once a killed ServerApp's heartbeat lapsed (its SuperLink died).
    result = reconcile_results(
        path, RunState(1, "finished", "failed", "No heartbeat received from the task")
    )

    assert result.status == RunOutcome.FAILED
    assert result.failure.code == FailureCode.RUN_LOST
    assert "without writing its outcome after 0 of 2 rounds" in result.failure.detail
    assert "No heartbeat received from the task" in path.read_text()


def test_a_running_run_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    _running(path)

    result = reconcile_results(path, RunState(1, "running", "", ""))

    assert result.status == RunOutcome.RUNNING
    missing = tmp_path / "missing.json"
    assert reconcile_results(missing, RunState(1, "finished", "failed", "")) is None


def test_importing_the_runner_loads_no_flwr_and_no_torch() -> None:
    code = (
        "import sys, federation.flower.runner, federation.flower.deployment, federation.cli; "
        "print(sorted(m for m in ('flwr', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
