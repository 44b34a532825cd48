"""Demo steps on the hub side: environment, database, the hub process, plants, baselines."""

from __future__ import annotations

import json
import os

from federation.demo.context import (
    PROJECT_ROOT,
    DemoContext,
    DemoError,
    free_port,
    spawn_until_ready,
)
from federation.demo.governance_steps import FIRST_CHAMPION_POLICY, promote_automatically
from federation.demo.plants import DEMO_PLANTS
from federation.hub_client import HubClient
from federation.registry_view import plants_table


def prepare_environment(ctx: DemoContext) -> None:
    """Embedded defaults: SQLite and the artifact store under ./var/hub, a free local port."""
    hub_dir = ctx.var_dir / "hub"
    hub_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    if not (env.get("MILLWRIGHT_HUB_DATABASE_URL") or env.get("MILLWRIGHT_DATABASE_URL")):
        env["MILLWRIGHT_HUB_DATABASE_URL"] = f"sqlite:///{hub_dir / 'hub.db'}"
    env.setdefault("MILLWRIGHT_HUB_ARTIFACT_ROOT", str(hub_dir / "artifacts"))
    port = int(env.get("MILLWRIGHT_HUB_PORT") or free_port(8100))
    env["MILLWRIGHT_HUB_PORT"] = str(port)
    env["MILLWRIGHT_HUB_HOST"] = "127.0.0.1"
    # The fleet step's rollout engine and webhook sender tick fast in the demo.
    env.setdefault("MILLWRIGHT_HUB_ROLLOUT_POLL_SECONDS", "0.25")
    env.setdefault("MILLWRIGHT_HUB_WEBHOOK_POLL_SECONDS", "0.2")
    # The demo's retrained candidate: one round at the plant (production default: 3).
    env.setdefault("MILLWRIGHT_HUB_RETRAINING_ROUNDS", "1")
    ctx.env = env
    ctx.hub_url = f"http://127.0.0.1:{port}"
    ctx.hub_log = hub_dir / "hub.log"



def migrate_hub(ctx: DemoContext) -> None:
    """Bring the hub database to the newest migration."""
    ctx.console.print(ctx.millwright("hub", "db", "upgrade").stdout.strip())



def enable_hub_tls(ctx: DemoContext) -> None:
    """Give the hub an HTTPS certificate from the CA the SuperLink's certificate came from.

    Every client of the demo pins that one CA: this process, the CLI subprocesses
    (``SSL_CERT_FILE``, which httpx reads) and the plant nodes (``MILLWRIGHT_NODE_HUB_CA_FILE``).
    """
    from federation.flower.certs import generate_tls, issue_certificate

    hub_dir = ctx.var_dir / "hub"
    if ctx.federation is not None and ctx.federation.tls is not None:
        ca_dir = ctx.federation.tls.ca_cert.parent
    else:  # no SuperLink started: the hub gets a CA of its own
        ca_dir = generate_tls(hub_dir / "ca").ca_cert.parent
    issued = issue_certificate(ca_dir, hub_dir / "tls", "hub")
    ctx.ca_file = ca_dir / "ca.crt"
    ctx.env.update(
        {
            "MILLWRIGHT_HUB_TLS_CERTFILE": str(issued.cert),
            "MILLWRIGHT_HUB_TLS_KEYFILE": str(issued.key),
            "MILLWRIGHT_NODE_HUB_CA_FILE": str(ctx.ca_file),
            "SSL_CERT_FILE": str(ctx.ca_file),
        }
    )
    ctx.hub_url = ctx.hub_url.replace("http://", "https://", 1)


def start_hub(ctx: DemoContext) -> None:
    """Start ``millwright hub serve`` over HTTPS and wait until /readyz answers 200."""
    assert ctx.hub_log is not None
    enable_hub_tls(ctx)
    ctx.hub_process = spawn_until_ready(
        ctx, ["hub", "serve"], ctx.hub_log, f"{ctx.hub_url}/readyz", "hub"
    )
    ctx.console.print(f"hub ready at {ctx.hub_url} (log: {ctx.hub_log})")



def create_admin_token(ctx: DemoContext) -> None:
    """Mint an admin token with the CLI and open a hub client with it."""
    out = ctx.millwright(
        "hub", "create-token", "--role", "admin", "--name", "demo", "--format", "json"
    )
    ctx.admin_token = json.loads(out.stdout)["token"]
    ctx.hub = HubClient(ctx.hub_url, token=ctx.admin_token, ca_file=ctx.ca_file)
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



def models_root(ctx: DemoContext) -> str:
    """Where the demo's trained and exported baselines are cached."""
    return str(ctx.var_dir / "models")



def train_and_export_baselines(ctx: DemoContext) -> None:
    """Train demo-sized baselines on the shipped data and export OpenVINO FP32 + INT8 IR."""
    for baseline, plant_args, epochs in DEMO_TRAINING:
        for command in ("train", "export"):
            extra = ["--epochs", str(epochs)] if command == "train" else []
            out = ctx.millwright(
                "baselines", command, baseline, *plant_args, *extra,
                "--root", models_root(ctx), "--format", "json",
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
        "baselines", "publish", "all", "--plant", "FD001", "--root", models_root(ctx),
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
    """Promote each published baseline to champion at the plants that run it.

    The champion alias is written only by a promotion: a plant's first champion goes through
    the automatic ``promotion-first-champion`` gate (artifact, lineage, contract), recorded.
    """
    assert ctx.hub is not None
    for row in ctx.published:
        for plant_id in DEMO_CHAMPIONS[row["baseline"]]:
            promotion = promote_automatically(
                ctx, int(row["version_id"]), plant_id, FIRST_CHAMPION_POLICY
            )
            ctx.console.print(
                f"{plant_id}: champion {row['model']} {row['version']} "
                f"(promotion {promotion.id}, {FIRST_CHAMPION_POLICY}, {promotion.status.value})"
            )



def print_registry(ctx: DemoContext) -> None:
    """Print the registry as the hub reports it."""
    assert ctx.hub is not None
    ctx.console.print(plants_table(ctx.hub.iter_plants()))
    models = list(ctx.hub.iter_models())
    ctx.console.print(f"baseline models: {len(models)}")
