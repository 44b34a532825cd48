"""``millwright demo run``: the steps in order, and stopping every process the demo started."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from federation.demo.audit_steps import verify_and_tamper_audit
from federation.demo.connector_steps import (
    feed_lines,
    start_line_connectors,
    start_line_peers,
    stop_lines,
)
from federation.demo.context import DemoContext, DemoError, Step, stop_process
from federation.demo.dashboard_steps import closing_line, show_dashboards
from federation.demo.federation_steps import (
    run_campaign,
    start_superlink,
    start_supernodes,
    stop_supernodes,
)
from federation.demo.fleet_steps import fleet_rollout
from federation.demo.governance_steps import govern_promotions, publish_policies
from federation.demo.hub_steps import (
    assign_champions,
    create_admin_token,
    enroll_plants,
    migrate_hub,
    prepare_environment,
    print_registry,
    publish_baselines,
    start_hub,
    train_and_export_baselines,
)
from federation.demo.node_steps import (
    DEMO_NODE_PLANT,
    monitor_plants,
    replay_test_streams,
    show_hub_metrics,
    start_plant_nodes,
)
from federation.demo.retraining_steps import (
    retrain_shifted_plant,
    start_hub_scheduler,
    stop_hub_scheduler,
)

#: The demo, in order. The SuperLink starts before the hub, which runs campaigns on it.
STEPS: list[Step] = [
    ("prepare environment", prepare_environment),
    ("start line peers (OPC UA PLC)", start_line_peers),
    ("migrate hub database", migrate_hub),
    ("start SuperLink", start_superlink),
    ("start hub", start_hub),
    ("start hub scheduler", start_hub_scheduler),
    ("create admin token", create_admin_token),
    ("enroll demo plants", enroll_plants),
    ("train and export baselines", train_and_export_baselines),
    ("publish baselines", publish_baselines),
    ("publish governance policies", publish_policies),
    ("assign champions", assign_champions),
    ("start plant SuperNodes", start_supernodes),
    ("federated campaign from the hub", run_campaign),
    ("start plant nodes", start_plant_nodes),
    ("start line connectors", start_line_connectors),
    ("replay test streams (one shifted)", replay_test_streams),
    ("monitor before and after labels", monitor_plants),
    ("retraining: trigger, decision, candidate, gate", retrain_shifted_plant),
    ("cross-plant metrics on the hub", show_hub_metrics),
    ("lines over OPC UA and MQTT", feed_lines),
    ("promotions: gate, four eyes, e-signature", govern_promotions),
    ("fleet: rollout in waves, abort, rollback, webhooks", fleet_rollout),
    ("audit trail: verify, tamper, verify", verify_and_tamper_audit),
    ("print registry", print_registry),
    ("dashboards", show_dashboards),
]


def stop_all(ctx: DemoContext) -> None:
    """Stop the plant node, the SuperNodes, the hub and the SuperLink started by the demo."""
    if ctx.hub is not None:
        ctx.hub.close()
    stop_lines(ctx)
    for process, _ in ctx.nodes.values():
        stop_process(process)
    stop_supernodes(ctx)
    stop_hub_scheduler(ctx)
    stop_process(ctx.hub_process)
    if ctx.federation is not None:
        ctx.federation.stop()


def run_steps(ctx: DemoContext, steps: list[Step], *, keep_running: bool = False) -> None:
    """Run ``steps`` in order, then stop everything (unless ``keep_running``, until Ctrl-C)."""
    timings: list[tuple[str, float]] = []
    try:
        for number, (title, step) in enumerate(steps, start=1):
            ctx.console.rule(f"[bold]{number}/{len(steps)} {title}")
            started = time.monotonic()
            step(ctx)
            timings.append((title, time.monotonic() - started))
        _print_timings(ctx, timings)
        if keep_running:
            node_url = ctx.nodes[DEMO_NODE_PLANT][1]
            engineer = ctx.node_keys.get(DEMO_NODE_PLANT, {}).get("engineer")
            ctx.console.print(
                f"\nhub: {ctx.hub_url}  (OpenAPI: {ctx.hub_url}/openapi.json with a token)\n"
                f"plant node {DEMO_NODE_PLANT}: {node_url}  (API docs {node_url}/docs, with "
                f"'Authorization: Bearer {engineer}')\n"
                f"admin token: {ctx.admin_token}\n{closing_line(ctx.hub_url)}\n"
                "Press Ctrl-C to stop."
            )
            while ctx.hub_process is not None and ctx.hub_process.poll() is None:
                time.sleep(0.5)
    except KeyboardInterrupt:
        ctx.console.print("stopping")
    finally:
        stop_all(ctx)


def _print_timings(ctx: DemoContext, timings: list[tuple[str, float]]) -> None:
    """Print how long each step took, so a slow step is visible at a glance."""
    table = Table(title="step durations", show_edge=False)
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for title, seconds in timings:
        table.add_row(title, f"{seconds:.1f}")
    table.add_row("[bold]total", f"[bold]{sum(s for _, s in timings):.1f}")
    ctx.console.print(table)


app = typer.Typer(no_args_is_help=True, help="Run the end-to-end demo on embedded defaults.")


@app.command("run")
def run(
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the services up until Ctrl-C.")
    ] = False,
) -> None:
    """Run every demo step on embedded defaults (state under ./var/); exit 0 on success."""
    # Wide when piped (logs, CI), so tables and summary lines stay on one line each.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    ctx = DemoContext(workdir=Path.cwd(), console=console)
    try:
        run_steps(ctx, STEPS, keep_running=keep_running)
    except DemoError as exc:
        ctx.console.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    ctx.console.print("[green]demo finished[/green]")
    if ctx.hub_url:
        ctx.console.print(closing_line(ctx.hub_url))  # the demo ends with the dashboards' URL
