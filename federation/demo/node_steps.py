"""Demo steps on the plant side: the plant node serving the line and the replayed stream."""

from __future__ import annotations

import json

import httpx

from federation.demo.context import DemoContext, DemoError, free_port, spawn_until_ready

DEMO_NODE_PLANT = "fd001"



def start_plant_node(ctx: DemoContext) -> None:
    """Start the fd001 plant node with a plant-scoped token; it pulls its champions from the hub."""
    token = json.loads(
        ctx.millwright(
            "hub", "create-token", "--role", "plant", "--plant", DEMO_NODE_PLANT,
            "--name", f"node-{DEMO_NODE_PLANT}", "--format", "json",
        ).stdout
    )["token"]
    port = free_port(8200)
    ctx.node_url = f"http://127.0.0.1:{port}"
    node_dir = ctx.var_dir / f"node-{DEMO_NODE_PLANT}"
    node_dir.mkdir(parents=True, exist_ok=True)
    env = {**ctx.env, "MILLWRIGHT_NODE_HUB_TOKEN": token}
    args = [
        "node", "serve", "--plant", DEMO_NODE_PLANT, "--hub", ctx.hub_url,
        "--data-dir", str(node_dir), "--port", str(port),
    ]
    ctx.node_process = spawn_until_ready(
        ctx, args, node_dir / "node.log", f"{ctx.node_url}/v1/ready", "plant node", env=env
    )
    ctx.console.print(f"plant node {DEMO_NODE_PLANT} ready at {ctx.node_url}")
    ctx.console.print_json(data=httpx.get(f"{ctx.node_url}/v1/ready", timeout=2.0).json())



def replay_test_streams(ctx: DemoContext) -> None:
    """Replay the plant's raw test stream through the node's /v1/predict."""
    for baseline, subset in (("cmapss", "FD001"),):
        out = ctx.millwright(
            "node", "replay", "--baseline", baseline, "--plant", subset, "--node", ctx.node_url,
            "--limit", "100", "--format", "json",
        )
        summary = json.loads(out.stdout)
        ctx.console.print(
            f"{baseline} {subset}: {summary['requests']} requests, {summary['predictions']} "
            f"predictions, {summary['fallback']} fallback, {summary['rejected']} rejected, "
            f"p50 {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms"
        )
        if summary["predictions"] == 0:
            raise DemoError(f"the node answered no {baseline} prediction: {summary}")
