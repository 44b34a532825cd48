"""Demo steps on the plant side: plant nodes, replayed streams, monitoring, hub metrics.

One plant node per turbofan plant serves that plant's campaign model; the test streams are
replayed (one of them shifted), monitored, and reported to the hub's cross-plant registry.
The plant nodes are real ``millwright node serve`` processes with plant-scoped tokens; the
steps drive them through the node CLI (``replay-fleet``, ``monitor --once``), never by
importing ``plant_node``. Each node gets its own keys (``node create-key``): a ``line`` key
the replays send, and an ``engineer`` key printed for a person to explore the node's API.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from federation.demo.context import (
    DemoContext,
    DemoError,
    free_ports,
    run_per_plant,
    spawn_until_ready,
)
from federation.demo.plants import AI4I_PLANTS, CMAPSS_PLANTS
from federation.schemas.auth import Role
from federation.schemas.metrics_registry import MetricKind

#: The plant whose URL the demo prints for a person to explore (``--keep-running``).
DEMO_NODE_PLANT = "fd001"
#: The plant whose second half of the stream gets a sensor recalibration (s11 + 0.6).
SHIFTED_PLANT = "fd001"
SHIFT = "s11=0.6"
#: Monitoring sized for 100 replayed test engines (defaults suit a production line).
# A demo replays minutes of production, not weeks: every node overrides its recipe's chunk
# size and reference (explicit node settings win over the recipe's monitoring section).
MONITOR_ENV = {
    "MILLWRIGHT_NODE_MONITOR_CHUNK_SIZE": "100",
    "MILLWRIGHT_NODE_MONITOR_REFERENCE_ROWS": "1000",
    "MILLWRIGHT_NODE_MONITOR_MIN_ROWS": "50",
}
# The milling lines: the first 600 parts with QA verdicts are the reference, then chunks of 150.
AI4I_MONITOR_ENV = {**MONITOR_ENV, "MILLWRIGHT_NODE_MONITOR_CHUNK_SIZE": "150",
                    "MILLWRIGHT_NODE_MONITOR_REFERENCE_ROWS": "600"}  # fmt: skip
AI4I_REPLAY_PARTS = 900  # line H made 1,000 parts in the whole data set


def monitor_env(plant: str) -> dict[str, str]:
    """Return the monitoring settings a demo plant's node commands run with."""
    return AI4I_MONITOR_ENV if plant in AI4I_PLANTS else MONITOR_ENV


METRICS_TIMEOUT_S = 60.0


def start_plant_nodes(ctx: DemoContext) -> None:
    """Start one plant node per demo plant; each pulls its champion from the hub.

    The plants start concurrently (each one's token, keys and process are its own); their
    ports are reserved together first, so two plants never pick the same free port.
    """
    assert ctx.hub is not None
    plants = [*CMAPSS_PLANTS, *AI4I_PLANTS]
    ports = free_ports(len(plants), 8200)
    # Plant-scoped hub tokens, minted one after another through the admin client.
    tokens = {
        plant: ctx.hub.create_token(Role.PLANT, plant_id=plant, name=f"node-{plant}").token
        for plant in plants
    }
    by_plant = dict(zip(plants, ports, strict=True))
    scheme = "https" if ctx.ca_file is not None else "http"
    try:
        run_per_plant(
            plants,
            lambda plant: _start_node(
                ctx, plant, f"{scheme}://127.0.0.1:{by_plant[plant]}", tokens[plant]
            ),
        )
    finally:  # in plant order; a node that started is in ctx.nodes even if another failed
        ctx.nodes = {plant: ctx.nodes[plant] for plant in plants if plant in ctx.nodes}
    for plant in plants:
        ctx.console.print(f"plant node {plant} ready at {ctx.nodes[plant][1]}")


def _start_node(ctx: DemoContext, plant: str, url: str, token: str) -> None:
    """Give one plant node its keys, start it, and wait until it is ready."""
    node_dir = ctx.node_dir(plant)
    node_dir.mkdir(parents=True, exist_ok=True)
    ctx.node_keys[plant] = {
        role: json.loads(
            ctx.millwright(
                "node", "create-key", "--role", role, "--name", f"demo-{role}",
                "--plant", plant, "--data-dir", str(node_dir), "--format", "json",
            ).stdout
        )["key"]
        for role in ("line", "engineer")
    }  # fmt: skip
    env = {**ctx.env, **monitor_env(plant), "MILLWRIGHT_NODE_HUB_TOKEN": token}
    args = [
        "node", "serve", "--plant", plant, "--hub", ctx.hub_url,
        "--data-dir", str(node_dir), "--port", url.rsplit(":", 1)[1],
    ]  # fmt: skip
    if url.startswith("https://"):
        args += _node_tls_args(ctx, plant, node_dir)
    # One dict item per thread: safe to assign concurrently.
    ctx.nodes[plant] = (
        spawn_until_ready(
            ctx, args, node_dir / "node.log", f"{url}/v1/ready", f"plant node {plant}", env=env
        ),
        url,
    )


def _node_tls_args(ctx: DemoContext, plant: str, node_dir: Path) -> list[str]:
    """Issue the node an HTTPS certificate from the demo CA, which every line client pins.

    The same CA signed the hub's and the SuperLink's certificates, so one pinned file
    (``SSL_CERT_FILE`` for the CLI subprocesses) verifies every hop of the demo.
    """
    from federation.flower.certs import issue_certificate

    assert ctx.ca_file is not None
    issued = issue_certificate(ctx.ca_file.parent, node_dir / "tls", f"node-{plant}")
    return ["--certfile", str(issued.cert), "--keyfile", str(issued.key)]


def _replay(ctx: DemoContext, plant: str, units: str, *extra: str) -> dict[str, int]:
    _, url = ctx.nodes[plant]
    out = ctx.millwright(
        "node",
        "replay-fleet",
        "--node",
        url,
        "--subset",
        CMAPSS_PLANTS[plant],
        "--units",
        units,
        *extra,
        "--format",
        "json",
        extra_env={"MILLWRIGHT_NODE_KEY": ctx.node_keys[plant]["line"]},
    )
    counts: dict[str, int] = json.loads(out.stdout)
    if counts["predictions"] == 0:
        raise DemoError(f"{plant}: the node answered no prediction for units {units}: {counts}")
    return counts


def replay_test_streams(ctx: DemoContext) -> None:
    """Replay each plant's test engines through /v1/predict, then their failure records.

    Units 1-50 are the reference period; 51-100 follow. At the shifted plant, units 76-100
    arrive with sensor s11 recalibrated (+0.6), the change monitoring must catch.
    """
    totals = run_per_plant(list(CMAPSS_PLANTS), lambda plant: _replay_plant(ctx, plant))
    for plant in CMAPSS_PLANTS:
        total = totals[plant]
        shifted = f"; units 76-100 with {SHIFT}" if plant == SHIFTED_PLANT else ""
        ctx.console.print(
            f"{plant} ({CMAPSS_PLANTS[plant]} test engines 1-100{shifted}): "
            f"{total['requests']} requests, {total['predictions']} predictions, "
            f"{total['fallback']} fallback, {total['outcomes']} failure records"
        )
    summaries = run_per_plant(list(AI4I_PLANTS), lambda plant: _replay_line(ctx, plant))
    for plant, variant in AI4I_PLANTS.items():
        summary = summaries[plant]
        ctx.console.print(
            f"{plant} (AI4I type {variant} parts): {summary['requests']} requests, "
            f"{summary['predictions']} predictions, {summary['fallback']} fallback, "
            f"{summary['rejected']} rejected, {summary['outcomes']} QA verdicts, "
            f"p50 {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms"
        )
        if summary["predictions"] == 0:
            raise DemoError(f"{plant}: the node answered no prediction: {summary}")


def _replay_plant(ctx: DemoContext, plant: str) -> dict[str, int]:
    """Replay one turbofan plant's test engines, its three parts in order."""
    shift = ["--offset", SHIFT] if plant == SHIFTED_PLANT else []
    parts: list[tuple[str, list[str]]] = [("1-50", []), ("51-75", []), ("76-100", shift)]
    total = {"requests": 0, "predictions": 0, "fallback": 0, "outcomes": 0}
    for units, extra in parts:
        for key, value in _replay(ctx, plant, units, *extra).items():
            total[key] += value
    return total


def _replay_line(ctx: DemoContext, plant: str) -> dict[str, Any]:
    """Replay one milling line's parts with their QA verdicts."""
    out = ctx.millwright(
        "node", "replay", "--baseline", "ai4i", "--plant", AI4I_PLANTS[plant], "--verdicts",
        "--node", ctx.nodes[plant][1], "--limit", str(AI4I_REPLAY_PARTS), "--format", "json",
        extra_env={"MILLWRIGHT_NODE_KEY": ctx.node_keys[plant]["line"]},
    )  # fmt: skip
    summary: dict[str, Any] = json.loads(out.stdout)
    return summary


def monitor_plants(ctx: DemoContext) -> None:
    """Run each node's monitoring job once: estimated vs realized per chunk, and alerts."""
    plants = [*CMAPSS_PLANTS, *AI4I_PLANTS]
    # Each run is its own process with its own node database: they run side by side.
    results = run_per_plant(plants, lambda plant: _monitor_once(ctx, plant), workers=3)
    for plant in plants:
        summaries = results[plant]
        raised = [a for s in summaries for a in s.get("raised") or []]
        if plant == SHIFTED_PLANT:
            ctx.console.print(_chunk_table(plant, summaries))
            for alert in raised:
                ctx.console.print(
                    f"[bold red]ALERT[/bold red] {plant} {alert['kind']}: {alert['description']}"
                )
            if not raised:
                raise DemoError(f"{plant}: the shifted stream raised no alert")
        else:
            chunks = [c for s in summaries for c in s.get("chunks") or []]
            ctx.console.print(
                f"{plant}: {len(chunks)} chunks monitored, {len(raised)} alerts raised"
            )


def _monitor_once(ctx: DemoContext, plant: str) -> list[dict[str, Any]]:
    out = ctx.millwright(
        "node", "monitor", "--once", "--plant", plant,
        "--data-dir", str(ctx.node_dir(plant)), "--format", "json",
        extra_env=monitor_env(plant),
    )  # fmt: skip
    summaries: list[dict[str, Any]] = json.loads(out.stdout)
    return summaries


def _num(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else "-"


def _chunk_table(plant: str, summaries: list[dict[str, object]]) -> Table:
    table = Table(title=f"{plant}: estimated (nannyml DLE) vs realized RMSE per chunk")
    for name in ("chunk", "rows", "estimated", "bounds", "realized", "labels", "top drift"):
        table.add_column(name, justify="left" if name in ("bounds", "top drift") else "right")
    for summary in summaries:
        for c in summary.get("chunks") or []:  # type: ignore[attr-defined]
            top = ", ".join(f"{n} {v:.2f}" for n, v in c["top_drift"][:2])
            perf = c.get("performance") or [{}]
            why = perf[0].get("unreliable") or []
            # a flagged estimate is shown as what flagged it: the number is not to be trusted
            estimate = "unreliable: " + ", ".join(why) if why else _num(c["estimated"])
            table.add_row(
                str(c["chunk"]),
                str(c["n_rows"]),
                estimate,
                f"[{_num(c['lower'])}, {_num(c['upper'])}]",
                _num(c["realized"]),
                str(c["n_labels"]),
                top,
            )
    return table


def show_hub_metrics(ctx: DemoContext) -> None:
    """Wait for every plant's anonymized report to reach the hub; print what executives see."""
    assert ctx.hub is not None
    deadline = time.monotonic() + METRICS_TIMEOUT_S
    while True:
        items = ctx.hub.summarize_metrics().items
        plants = {o.plant_id for o in items}
        if {*CMAPSS_PLANTS, *AI4I_PLANTS} <= plants:
            break
        if time.monotonic() > deadline:
            raise DemoError(
                f"hub metrics after {METRICS_TIMEOUT_S:.0f} s cover only "
                f"{sorted(plants)}; the nodes' outboxes did not deliver"
            )
        time.sleep(1.0)
    table = Table(title="hub: latest cross-plant metrics (GET /api/v1/metrics/summary)")
    for name in (
        "plant",
        "model version",
        "metric",
        "estimated",
        "realized",
        "latency p99 ms",
        "alerts raised",
        "true / false alarms",
    ):
        table.add_column(name, justify="left" if name in ("plant", "model version") else "right")

    def value(plant: str, kind: MetricKind, metric: str) -> str:
        found = [
            o
            for o in items
            if o.plant_id == plant and o.kind == kind and o.metric == metric and o.subject is None
        ]
        return _num(found[-1].value) if found else "-"

    for plant in sorted(plants):
        versions = sorted({o.model_version for o in items if o.plant_id == plant})
        metric = "f1" if plant in AI4I_PLANTS else "rmse"
        table.add_row(
            plant,
            ", ".join(versions),
            metric,
            value(plant, MetricKind.ESTIMATED, metric),
            value(plant, MetricKind.REALIZED, metric),
            value(plant, MetricKind.LATENCY, "p99"),
            value(plant, MetricKind.ALERTS, "raised"),
            f"{value(plant, MetricKind.ALERTS, 'true_alarms')} / "
            f"{value(plant, MetricKind.ALERTS, 'false_alarms')}",
        )
    ctx.console.print(table)
