"""Start a federated run on a running SuperLink, follow it, and read its results.

The app is this repository's ``federation/apps`` directory, packaged as a FAB by flwr's
own builder and sent over the Control API (what ``flwr run`` does); its components are
imported from the installed Millwright code, so nothing is installed at run time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from federation.flower.results import RunRecorder, read_results
from federation.schemas.federated_run import FailureCode, FederatedRunResult, RunOutcome

if TYPE_CHECKING:
    from federation.flower.control import ControlClient, RunConfigValue, RunState

APP_DIR = Path(__file__).resolve().parents[1] / "apps"


class RunTimeout(TimeoutError):
    """The run did not finish in time (it was asked to stop)."""


class RunNotFound(LookupError):
    """The SuperLink does not know the run (restarted without its state, or never had it)."""

    def __init__(self, run_id: int, address: str) -> None:
        super().__init__(f"the SuperLink at {address} does not know Flower run {run_id}")
        self.run_id = run_id
        self.address = address


@dataclass(frozen=True)
class RunOutcomeReport:
    """Flower's final status of a run and the results document it wrote."""

    state: RunState
    result: FederatedRunResult | None


def start_run(
    control: ControlClient,
    *,
    run_config: dict[str, RunConfigValue],
    results_path: Path,
    model_path: Path | None = None,
    node_plants: dict[int, str] | None = None,
    app_dir: Path = APP_DIR,
) -> int:
    """Start the Millwright app with ``run_config``; return the Flower run id.

    ``results-path`` (and ``model-path``, ``node-plants`` when given) are added to the
    run config, as absolute paths on the SuperLink's machine.
    """
    config: dict[str, RunConfigValue] = dict(run_config)
    config["results-path"] = str(results_path.resolve())
    if model_path is not None:
        config["model-path"] = str(model_path.resolve())
    if node_plants:
        config["node-plants"] = ",".join(f"{n}={p}" for n, p in node_plants.items())
    results_path.parent.mkdir(parents=True, exist_ok=True)
    return control.start_run(app_dir, config)


def wait_for_run(
    control: ControlClient, run_id: int, *, timeout: float, poll_seconds: float = 1.0
) -> RunState:
    """Poll until the run finishes; stop it and raise :class:`RunTimeout` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        state = control.run_state(run_id)
        if state.finished:
            return state
        if time.monotonic() >= deadline:
            control.stop_run(run_id)
            raise RunTimeout(f"run {run_id} still {state.status} after {timeout:.0f}s; stopped")
        time.sleep(poll_seconds)


def reconcile_results(path: Path, state: RunState) -> FederatedRunResult | None:
    """Make the results file agree with Flower's final status of the run.

    A ServerApp that was stopped (cancelled campaign) or killed before it could write
    its outcome leaves ``status: running`` behind; once Flower reports the run finished,
    this rewrites such a document as ``failed`` with Flower's status as the reason:
    ``stopped``, or ``run_lost`` for a ServerApp that died (killed, or its SuperLink went
    down: Flower then reports "No heartbeat received from the task" or "Task failed with
    unknown error.").

    Parameters
    ----------
    path : Path
        The run's ``results-path``.
    state : RunState
        Flower's status of the run.

    Returns
    -------
    FederatedRunResult | None
        The (possibly updated) document, or None if the run never wrote one.
    """
    result = read_results(path)
    if result is None or not state.finished or result.status != RunOutcome.RUNNING:
        return result
    flower = f"Flower run finished:{state.sub_status}"
    if state.details:
        flower += f" ({state.details})"
    if state.sub_status == "stopped":
        code, detail = FailureCode.STOPPED, flower
    else:
        code = FailureCode.RUN_LOST
        detail = (
            f"the ServerApp ended without writing its outcome after {result.rounds_completed} "
            f"of {result.rounds_planned} rounds (killed, or its SuperLink went down); {flower}"
        )
    recorder = RunRecorder(path, result)
    recorder.fail(code, detail)
    return recorder.result


def run_and_wait(
    control: ControlClient,
    *,
    run_config: dict[str, RunConfigValue],
    results_path: Path,
    model_path: Path | None = None,
    node_plants: dict[int, str] | None = None,
    timeout: float = 600.0,
) -> RunOutcomeReport:
    """Start a run, wait for it to finish, and return its status and results."""
    run_id = start_run(
        control,
        run_config=run_config,
        results_path=results_path,
        model_path=model_path,
        node_plants=node_plants,
    )
    state = wait_for_run(control, run_id, timeout=timeout)
    return RunOutcomeReport(state=state, result=reconcile_results(results_path, state))
