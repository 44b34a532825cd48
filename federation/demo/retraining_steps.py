"""Demo steps of retraining on the hub: the scheduler, and following fd001's trigger.

The lead wires these into the demo's step list: :func:`start_hub_scheduler` after the hub
is up (it settles retrained candidates; the demo hub keeps driving campaigns itself), then,
once fd001's node has replayed its recalibrated sensor and its trigger has fired,
:func:`follow_retraining` shows the hub's decision, the candidate's training and
validation, and its promotion or refusal, as one chain; :func:`stop_hub_scheduler` at the
end. Nothing here fakes the node's request: the step waits for the one the node sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from federation.demo.context import DemoContext, DemoError, stop_process
from federation.retraining_view import chain_view, requests_table
from federation.schemas.retraining import CandidateOutcome, RetrainingChain

#: The plant whose recalibrated sensor triggers the retraining.
RETRAINING_PLANT = "fd001"
#: The gate retrained candidates pass: automatic (recorded) like the campaign outcomes.
RETRAINING_GATE = "promotion-campaign-auto@1"
#: How long to wait for the node's request, and for the candidate to be decided.
REQUEST_TIMEOUT_S = 120.0
CANDIDATE_TIMEOUT_S = 600.0
_UNSETTLED = (None, CandidateOutcome.TRAINING)
_processes: dict[int, subprocess.Popen[bytes]] = {}


def scheduler_env(ctx: DemoContext) -> dict[str, str]:
    """Return the hub scheduler's environment: the demo hub's, with the retraining gate."""
    return {**ctx.env, "MILLWRIGHT_HUB_RETRAINING_GATE": RETRAINING_GATE}


def start_hub_scheduler(ctx: DemoContext) -> None:
    """Start ``millwright hub scheduler`` (one process, beside the hub's web process)."""
    log_path = ctx.var_dir / "hub-scheduler.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "millwright", "hub", "scheduler"],
            cwd=ctx.workdir, env=scheduler_env(ctx), stdout=log, stderr=subprocess.STDOUT,
        )
    time.sleep(1.0)
    if proc.poll() is not None:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise DemoError(f"the hub scheduler exited with {proc.returncode}; log tail:\n{tail}")
    _processes[id(ctx)] = proc
    ctx.console.print(f"hub scheduler running (pid {proc.pid}, log {log_path})")


def stop_hub_scheduler(ctx: DemoContext) -> None:
    """Stop the scheduler :func:`start_hub_scheduler` started, if any."""
    stop_process(_processes.pop(id(ctx), None))


def retrain_shifted_plant(ctx: DemoContext) -> None:
    """Evaluate the shifted plant's triggers on its node, then follow the request on the hub.

    ``millwright node retraining evaluate`` is what the node's scheduler runs every
    interval; the demo runs it once, right after monitoring raised the drift alerts. The
    firing travels through the node's outbox (its serving process delivers it), the hub
    decides it by policy and trains the candidate as a campaign, and the hub scheduler
    validates and gates it. The step fails when no trigger fires on the shifted stream.
    """
    from federation.demo.node_steps import SHIFTED_PLANT, monitor_env

    out = ctx.millwright(
        "node", "retraining", "evaluate", "--plant", SHIFTED_PLANT,
        "--data-dir", str(ctx.node_dir(SHIFTED_PLANT)), "--format", "json",
        extra_env=monitor_env(SHIFTED_PLANT),
    )  # fmt: skip
    fired = json.loads(out.stdout)
    if not fired:
        raise DemoError(f"{SHIFTED_PLANT}: no retraining trigger fired on the shifted stream")
    for firing in fired:
        ctx.console.print(
            f"[bold]FIRED[/bold] {SHIFTED_PLANT} {firing['trigger']} ({firing['condition']}): "
            f"{firing['summary']}"
        )
    follow_retraining(ctx, plant=SHIFTED_PLANT)


def follow_retraining(
    ctx: DemoContext,
    *,
    plant: str = RETRAINING_PLANT,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    candidate_timeout_s: float = CANDIDATE_TIMEOUT_S,
    poll_s: float = 2.0,
) -> RetrainingChain:
    """Wait for the plant's retraining request, then print its chain once it is settled.

    Raises
    ------
    DemoError
        When no request arrives in time, or its candidate is still training at the timeout.
    """
    assert ctx.hub is not None
    deadline = time.monotonic() + request_timeout_s
    page = ctx.hub.list_retraining_requests(plant_id=plant, page_size=20)
    while not page.items:
        if time.monotonic() > deadline:
            raise DemoError(
                f"no retraining request from {plant} within {request_timeout_s:.0f} s: did "
                "its trigger fire (see the node's log and `millwright node retraining status`)?"
            )
        time.sleep(poll_s)
        page = ctx.hub.list_retraining_requests(plant_id=plant, page_size=20)
    ctx.console.print(requests_table(page.items))
    first = page.items[-1]  # oldest on the page: the trigger that fired first
    chain = ctx.hub.retraining_chain(plant, first.id)
    deadline = time.monotonic() + candidate_timeout_s
    while chain.request.candidate_outcome in _UNSETTLED and chain.request.decision != "refused":
        if time.monotonic() > deadline:
            raise DemoError(
                f"retraining {plant}/{first.id}: candidate still "
                f"{chain.request.candidate_outcome} after {candidate_timeout_s:.0f} s"
            )
        time.sleep(poll_s)
        chain = ctx.hub.retraining_chain(plant, first.id)
    ctx.console.print(chain_view(chain))
    return chain
