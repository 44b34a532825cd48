"""``millwright demo run``: the end-to-end demo on embedded defaults, as a list of steps.

Today: migrate the hub database (SQLite under ``./var/``), start the hub as a real local
uvicorn process, mint an admin token, enroll the demo plants and print the registry.
Later capabilities (baselines published, federated campaign, serving, monitoring) add
steps to :data:`STEPS`. The demo drives the hub only through its CLI (subprocesses) and
:class:`~federation.hub_client.HubClient`; it never imports the ``hub`` package.

Demo plants: the four C-MAPSS turbofan sub-datasets are four plants (``fd001``..``fd004``),
and the three AI4I 2020 product-quality variants L/M/H are three plants (``ai4i-l``,
``ai4i-m``, ``ai4i-h``) on one site, so each can be a separate federated client.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from federation.hub_client import HubClient
from federation.registry_view import plants_table
from federation.schemas.registry import AliasName, HardwareProfile, PlantCreate

PROJECT_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 60.0

_IPC = HardwareProfile(cpu="Intel Atom x6425E", cores=4, memory_gb=8, os="Ubuntu 22.04 LTS")
_IPC_BIG = HardwareProfile(
    cpu="Intel Core i5-1145G7E",
    cores=4,
    memory_gb=16,
    accelerator="Iris Xe iGPU",
    os="Ubuntu 22.04 LTS",
)

#: The demo plants (importable by other components, e.g. the plant node and Flower demos).
DEMO_PLANTS: list[PlantCreate] = [
    PlantCreate(
        id="fd001",
        name="Turbofan plant FD001",
        site="Toulouse engine shop",
        lines=["test-cell-1"],
        hardware_profile=_IPC,
    ),
    PlantCreate(
        id="fd002",
        name="Turbofan plant FD002",
        site="Hamburg engine shop",
        lines=["test-cell-1", "test-cell-2"],
        hardware_profile=_IPC_BIG,
    ),
    PlantCreate(
        id="fd003",
        name="Turbofan plant FD003",
        site="Derby engine shop",
        lines=["test-cell-1"],
        hardware_profile=_IPC,
    ),
    PlantCreate(
        id="fd004",
        name="Turbofan plant FD004",
        site="Montreal engine shop",
        lines=["test-cell-1", "test-cell-2"],
        hardware_profile=_IPC_BIG,
    ),
    PlantCreate(
        id="ai4i-l",
        name="Milling line L (low-quality variant)",
        site="Stuttgart machining works",
        lines=["L"],
        hardware_profile=_IPC,
    ),
    PlantCreate(
        id="ai4i-m",
        name="Milling line M (medium-quality variant)",
        site="Stuttgart machining works",
        lines=["M"],
        hardware_profile=_IPC,
    ),
    PlantCreate(
        id="ai4i-h",
        name="Milling line H (high-quality variant)",
        site="Stuttgart machining works",
        lines=["H"],
        hardware_profile=_IPC,
    ),
]


@dataclass
class DemoContext:
    """State the steps share: where things live, the hub process, the admin client."""

    workdir: Path
    console: Console
    env: dict[str, str] = field(default_factory=dict)
    hub_url: str = ""
    admin_token: str = ""
    hub_process: subprocess.Popen[bytes] | None = None
    hub_log: Path | None = None
    hub: HubClient | None = None
    node_process: subprocess.Popen[bytes] | None = None
    node_url: str = ""
    published: list[dict[str, Any]] = field(default_factory=list)

    @property
    def var_dir(self) -> Path:
        """Where the demo keeps its databases, artifacts and logs."""
        return self.workdir / "var"

    def millwright(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``millwright ARGS`` in a subprocess with the demo environment; raise on failure."""
        cmd = [sys.executable, "-m", "millwright", *args]
        result = subprocess.run(
            cmd, cwd=self.workdir, env=self.env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise DemoError(
                f"`millwright {' '.join(args)}` failed ({result.returncode}):\n"
                + result.stderr.strip()
            )
        return result


class DemoError(RuntimeError):
    """A demo step failed; the message says which and why."""


Step = tuple[str, Callable[[DemoContext], None]]


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise DemoError("no free TCP port on 127.0.0.1")


def prepare_environment(ctx: DemoContext) -> None:
    """Embedded defaults: SQLite and the artifact store under ./var/hub, a free local port."""
    hub_dir = ctx.var_dir / "hub"
    hub_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    if not (env.get("MILLWRIGHT_HUB_DATABASE_URL") or env.get("MILLWRIGHT_DATABASE_URL")):
        env["MILLWRIGHT_HUB_DATABASE_URL"] = f"sqlite:///{hub_dir / 'hub.db'}"
    env.setdefault("MILLWRIGHT_HUB_ARTIFACT_ROOT", str(hub_dir / "artifacts"))
    port = int(env.get("MILLWRIGHT_HUB_PORT") or _free_port(8100))
    env["MILLWRIGHT_HUB_PORT"] = str(port)
    env["MILLWRIGHT_HUB_HOST"] = "127.0.0.1"
    ctx.env = env
    ctx.hub_url = f"http://127.0.0.1:{port}"
    ctx.hub_log = hub_dir / "hub.log"


def migrate_hub(ctx: DemoContext) -> None:
    """Bring the hub database to the newest migration."""
    ctx.console.print(ctx.millwright("hub", "db", "upgrade").stdout.strip())


def _spawn_until_ready(
    ctx: DemoContext, args: list[str], log_path: Path, ready_url: str, what: str,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``millwright ARGS`` logging to ``log_path``; return once ``ready_url`` answers 200."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "millwright", *args],
            cwd=ctx.workdir, env=env or ctx.env, stdout=log, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise DemoError(f"the {what} exited with {proc.returncode}; log tail:\n{tail}")
        try:
            if httpx.get(ready_url, timeout=2.0).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise DemoError(
        f"the {what} did not become ready within {READY_TIMEOUT_S:.0f} s; see {log_path}"
    )


def start_hub(ctx: DemoContext) -> None:
    """Start ``millwright hub serve`` and wait until /readyz answers 200."""
    assert ctx.hub_log is not None
    ctx.hub_process = _spawn_until_ready(
        ctx, ["hub", "serve"], ctx.hub_log, f"{ctx.hub_url}/readyz", "hub"
    )
    ctx.console.print(f"hub ready at {ctx.hub_url} (log: {ctx.hub_log})")


def create_admin_token(ctx: DemoContext) -> None:
    """Mint an admin token with the CLI and open a hub client with it."""
    out = ctx.millwright(
        "hub", "create-token", "--role", "admin", "--name", "demo", "--format", "json"
    )
    ctx.admin_token = json.loads(out.stdout)["token"]
    ctx.hub = HubClient(ctx.hub_url, token=ctx.admin_token)
    ctx.console.print(f"admin token {ctx.admin_token[:10]}... (role {ctx.hub.whoami().role.value})")


def enroll_plants(ctx: DemoContext) -> None:
    """Enroll the demo plants (idempotent: re-running the demo changes nothing)."""
    assert ctx.hub is not None
    for plant in DEMO_PLANTS:
        ctx.hub.create_plant(plant)
    ctx.console.print(f"enrolled {len(DEMO_PLANTS)} plants")


#: Demo-sized training (cached by training fingerprint, so a second run reuses the models).
DEMO_TRAINING: list[tuple[str, list[str], int]] = [
    ("cmapss", ["--plant", "FD001"], 3),
    ("ai4i", [], 20),
]
#: Which demo plants run which published model as champion.
DEMO_CHAMPIONS: dict[str, list[str]] = {
    "cmapss": ["fd001"],
    "ai4i": ["ai4i-l", "ai4i-m", "ai4i-h"],
}
DEMO_NODE_PLANT = "fd001"


def _models_root(ctx: DemoContext) -> str:
    return str(ctx.var_dir / "models")


def train_and_export_baselines(ctx: DemoContext) -> None:
    """Train demo-sized baselines on the shipped data and export OpenVINO FP32 + INT8 IR."""
    for baseline, plant_args, epochs in DEMO_TRAINING:
        for command in ("train", "export"):
            extra = ["--epochs", str(epochs)] if command == "train" else []
            out = ctx.millwright(
                "baselines", command, baseline, *plant_args, *extra,
                "--root", _models_root(ctx), "--format", "json",
            )
            for row in json.loads(out.stdout):
                ctx.console.print(
                    f"{command:6} {row['baseline']:7} {str(row.get('plant') or 'all'):6} "
                    f"{row['status']:8} {row.get('summary', '')}"
                )


def publish_baselines(ctx: DemoContext) -> None:
    """Publish the exports (artifact + metadata + recipe) to the hub registry."""
    env_token = {"MILLWRIGHT_HUB_TOKEN": ctx.admin_token}
    ctx.env.update(env_token)
    out = ctx.millwright(
        "baselines", "publish", "all", "--plant", "FD001", "--root", _models_root(ctx),
        "--hub-url", ctx.hub_url, "--format", "json",
    )
    ctx.published = [r for r in json.loads(out.stdout) if r["status"] == "published"]
    for row in ctx.published:
        ctx.console.print(
            f"published {row['model']} {row['version']} (artifact {row['artifact_digest'][:12]}...)"
        )
    if len(ctx.published) != len(DEMO_CHAMPIONS):
        raise DemoError(f"expected {len(DEMO_CHAMPIONS)} published baselines, got {out.stdout}")


def assign_champions(ctx: DemoContext) -> None:
    """Make each published baseline the champion at the plants that run it."""
    assert ctx.hub is not None
    for row in ctx.published:
        for plant_id in DEMO_CHAMPIONS[row["baseline"]]:
            ctx.hub.set_alias(plant_id, row["model"], AliasName.CHAMPION, int(row["version_id"]))
            ctx.console.print(f"{plant_id}: champion {row['model']} {row['version']}")


def start_plant_node(ctx: DemoContext) -> None:
    """Start the fd001 plant node with a plant-scoped token; it pulls its champions from the hub."""
    token = json.loads(
        ctx.millwright(
            "hub", "create-token", "--role", "plant", "--plant", DEMO_NODE_PLANT,
            "--name", f"node-{DEMO_NODE_PLANT}", "--format", "json",
        ).stdout
    )["token"]
    port = _free_port(8200)
    ctx.node_url = f"http://127.0.0.1:{port}"
    node_dir = ctx.var_dir / f"node-{DEMO_NODE_PLANT}"
    node_dir.mkdir(parents=True, exist_ok=True)
    env = {**ctx.env, "MILLWRIGHT_NODE_HUB_TOKEN": token}
    args = [
        "node", "serve", "--plant", DEMO_NODE_PLANT, "--hub", ctx.hub_url,
        "--data-dir", str(node_dir), "--port", str(port),
    ]
    ctx.node_process = _spawn_until_ready(
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


def print_registry(ctx: DemoContext) -> None:
    """Print the registry as the hub reports it."""
    assert ctx.hub is not None
    ctx.console.print(plants_table(ctx.hub.iter_plants()))
    models = list(ctx.hub.iter_models())
    ctx.console.print(f"baseline models: {len(models)}")


#: The demo, in order. Later capabilities insert their steps before ``print registry``.
STEPS: list[Step] = [
    ("prepare environment", prepare_environment),
    ("migrate hub database", migrate_hub),
    ("start hub", start_hub),
    ("create admin token", create_admin_token),
    ("enroll demo plants", enroll_plants),
    ("train and export baselines", train_and_export_baselines),
    ("publish baselines", publish_baselines),
    ("assign champions", assign_champions),
    ("start plant node", start_plant_node),
    ("replay test streams", replay_test_streams),
    ("print registry", print_registry),
]


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_hub(ctx: DemoContext) -> None:
    """Stop the plant node and the hub started by the demo."""
    if ctx.hub is not None:
        ctx.hub.close()
    _stop(ctx.node_process)
    _stop(ctx.hub_process)


def run_steps(ctx: DemoContext, steps: list[Step], *, keep_running: bool = False) -> None:
    """Run ``steps`` in order, then stop the hub (unless ``keep_running``, until Ctrl-C)."""
    try:
        for number, (title, step) in enumerate(steps, start=1):
            ctx.console.rule(f"[bold]{number}/{len(steps)} {title}")
            step(ctx)
        if keep_running:
            ctx.console.print(
                f"\nhub: {ctx.hub_url}  (API docs {ctx.hub_url}/docs)\n"
                f"plant node {DEMO_NODE_PLANT}: {ctx.node_url}  (API docs {ctx.node_url}/docs)\n"
                f"admin token: {ctx.admin_token}\nPress Ctrl-C to stop."
            )
            while ctx.hub_process is not None and ctx.hub_process.poll() is None:
                time.sleep(0.5)
    except KeyboardInterrupt:
        ctx.console.print("stopping")
    finally:
        stop_hub(ctx)


app = typer.Typer(no_args_is_help=True, help="Run the end-to-end demo on embedded defaults.")


@app.command("run")
def run(
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the services up until Ctrl-C.")
    ] = False,
) -> None:
    """Run every demo step on embedded defaults (state under ./var/); exit 0 on success."""
    ctx = DemoContext(workdir=Path.cwd(), console=Console())
    try:
        run_steps(ctx, STEPS, keep_running=keep_running)
    except DemoError as exc:
        ctx.console.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    ctx.console.print("[green]demo finished[/green]")
