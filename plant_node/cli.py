"""``millwright node``: run a plant node and manage its database."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from plant_node.auth.cli import create_key, list_keys, revoke_key
from plant_node.config import NodeSettings
from plant_node.retraining.cli import app as retraining_app

if TYPE_CHECKING:
    from collections.abc import Iterator

    from federation.flower.processes import SuperNodeSpec

app = typer.Typer(help="Run a plant node (serving, sync, monitoring).", no_args_is_help=True)
db_app = typer.Typer(help="The node's local database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
models_app = typer.Typer(help="The node's local model cache.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(retraining_app, name="retraining")
app.command("create-key")(create_key)
app.command("list-keys")(list_keys)
app.command("revoke-key")(revoke_key)


def _settings(plant: str | None, hub: str | None, data_dir: Path | None) -> NodeSettings:
    overrides: dict[str, object] = {}
    if plant is not None:
        overrides["plant_id"] = plant
    if hub is not None:
        overrides["hub_url"] = hub
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    return NodeSettings(**overrides)  # type: ignore[arg-type]


PlantOpt = Annotated[
    str | None, typer.Option("--plant", help="Plant id (MILLWRIGHT_NODE_PLANT_ID).")
]
HubOpt = Annotated[
    str | None, typer.Option("--hub", help="Hub base URL (MILLWRIGHT_NODE_HUB_URL).")
]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default var/node-<plant>).")
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", envvar="MILLWRIGHT_NODE_KEY", help="A line key of the node."),
]


@app.command()
def serve(
    plant: PlantOpt = None,
    hub: HubOpt = None,
    data_dir: DataDirOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port.")] = None,
    certfile: Annotated[
        Path | None, typer.Option(help="PEM server certificate: serve HTTPS (TLS 1.2+)")
    ] = None,
    keyfile: Annotated[Path | None, typer.Option(help="PEM private key of --certfile")] = None,
    client_ca: Annotated[
        Path | None, typer.Option(help="Require client certificates signed by this CA (mTLS)")
    ] = None,
) -> None:
    """Migrate the local database, then serve the node's HTTP API with one worker.

    With ``--certfile/--keyfile`` (or ``MILLWRIGHT_NODE_TLS_*``) it speaks HTTPS only.
    """
    import uvicorn
    from fastapi import FastAPI

    from plant_node.db import upgrade_database
    from plant_node.main import create_app
    from plant_node.server import server_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = _settings(plant, hub, data_dir)
    settings.ensure_dirs()
    try:  # the transport (and the certificate files) are checked before the database
        server_config(settings, FastAPI(), host=host, port=port, certfile=certfile,
                      keyfile=keyfile, client_ca=client_ca)  # fmt: skip
    except ValueError as exc:  # InsecureTransport included
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    upgrade_database(settings.db_url)
    config = server_config(settings, create_app(settings), host=host, port=port,
                           certfile=certfile, keyfile=keyfile, client_ca=client_ca)  # fmt: skip
    uvicorn.Server(config).run()


@app.command()
def scheduler(
    plant: PlantOpt = None,
    hub: HubOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the node's scheduler process: monitoring, retraining triggers, outbox pruning.

    Jobs live in the node database's persistent job store; a run killed midway runs again
    on restart if still inside MILLWRIGHT_NODE_SCHEDULER_MISFIRE_GRACE_S. One per node.
    """
    from plant_node.db import upgrade_database
    from plant_node.scheduler import run_scheduler_process

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = _settings(plant, hub, data_dir)
    settings.ensure_dirs()
    upgrade_database(settings.db_url)
    run_scheduler_process(settings)


@app.command()
def connect(
    config: Annotated[
        list[Path], typer.Option("--config", help="Line mapping file (YAML); repeatable.")
    ],
    plant: PlantOpt = None,
    hub: HubOpt = None,
    data_dir: DataDirOpt = None,
    sync: Annotated[bool, typer.Option(help="Pull champions from the hub first.")] = False,
    status_every: Annotated[float, typer.Option(help="Print status every N s (0: never).")] = 0,
    run_for: Annotated[float | None, typer.Option(help="Stop after N seconds.")] = None,
    format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Run the line connectors (MQTT, OPC UA) of mapping files beside the node's serving."""
    from plant_node.connectors.cli import run

    run(
        config, _settings(plant, hub, data_dir), sync=sync, status_every_s=status_every,
        run_for_s=run_for, fmt=format,
    )  # fmt: skip


@db_app.command("upgrade")
def db_upgrade(
    plant: PlantOpt = None,
    data_dir: DataDirOpt = None,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Apply the node's migrations to its database."""
    from plant_node.db import current_revision, make_engine, upgrade_database

    settings = _settings(plant, None, data_dir)
    upgrade_database(settings.db_url, revision)
    engine = make_engine(settings.db_url)
    rev = current_revision(engine)
    engine.dispose()
    if format == "json":
        typer.echo(json.dumps({"database_url": settings.db_url, "revision": rev}))
    else:
        typer.echo(f"node database at {settings.db_url} is at revision {rev}")


@models_app.command("install")
def models_install(
    path: Annotated[Path, typer.Argument(help="Exported model directory (baselines.export).")],
    plant: PlantOpt = None,
    data_dir: DataDirOpt = None,
    version: Annotated[str | None, typer.Option(help="Registry version (folder name).")] = None,
    baseline: Annotated[str | None, typer.Option(help="Baseline it serves.")] = None,
    champion: Annotated[bool, typer.Option(help="Make it the champion at next start.")] = True,
    format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Verify an exported model and copy it into the node's cache (offline model delivery)."""
    from plant_node.serving.cache import ModelCache
    from plant_node.serving.runtime import read_manifest

    settings = _settings(plant, None, data_dir)
    cache = ModelCache(settings.cache_path, keep=settings.keep_model_versions)
    installed = cache.install(path, version, baseline)
    manifest = read_manifest(installed, settings.serving_precision)
    name = baseline or manifest.baseline
    if champion:
        cache.set_champion(name, installed.name)
    out = {
        "baseline": name,
        "version": installed.name,
        "path": str(installed),
        "champion": champion,
    }
    typer.echo(json.dumps(out) if format == "json" else f"installed {name} {installed.name}")


@models_app.command("list")
def models_list(
    plant: PlantOpt = None,
    data_dir: DataDirOpt = None,
    format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """List cached model versions per baseline, newest first, with the champion marked."""
    from plant_node.serving.cache import ModelCache

    settings = _settings(plant, None, data_dir)
    cache = ModelCache(settings.cache_path)
    out: dict[str, dict[str, object]] = {}
    for base_dir in sorted(p for p in settings.cache_path.iterdir() if p.is_dir()):
        out[base_dir.name] = {
            "champion": cache.champion(base_dir.name),
            "versions": [p.name for p in cache.versions(base_dir.name)],
        }
    if format == "json":
        typer.echo(json.dumps(out))
        return
    for name, info in out.items():
        typer.echo(f"{name}: champion={info['champion']} versions={info['versions']}")


@app.command()
def replay(
    baseline: Annotated[str, typer.Option(help="ai4i or cmapss.")],
    node: Annotated[str, typer.Option(help="Node URL.")] = "http://127.0.0.1:8200",
    plant: Annotated[
        str | None, typer.Option(help="AI4I product Type (L/M/H) or C-MAPSS subset (FD001..).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Requests to send.")] = 200,
    verdicts: Annotated[
        bool,
        typer.Option(help="AI4I: then post each part's QA verdict to /v1/outcomes (late labels)."),
    ] = False,
    key: KeyOpt = None,
    format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Replay a plant's raw test stream through ``/v1/predict`` and summarize the answers."""
    import time

    from federation.errors import ContractViolation
    from plant_node.client import NodeClient
    from plant_node.replay import ai4i_stream, replay_requests

    if verdicts and baseline != "ai4i":
        raise typer.BadParameter("QA verdicts exist for ai4i; C-MAPSS uses replay-fleet")
    # One pass over the stream: each request with the verdict its part will get (if asked).
    stream: Iterator[tuple[list[dict[str, Any]], int | None]] = (
        (([record], label) for record, label in ai4i_stream(plant, limit))
        if verdicts
        else ((records, None) for records in replay_requests(baseline, plant, limit))
    )
    latencies: list[float] = []
    counts = {"requests": 0, "predictions": 0, "fallback": 0, "rejected": 0, "outcomes": 0}
    judged: list[dict[str, Any]] = []
    with NodeClient(node, key=key) as client:
        for records, label in stream:
            started = time.perf_counter()
            try:
                answer = client.predict(baseline, records)
            except ContractViolation:
                counts["rejected"] += 1
                continue
            finally:
                counts["requests"] += 1
                latencies.append((time.perf_counter() - started) * 1000)
            counts["predictions"] += len(answer.predictions)
            counts["fallback"] += int(answer.fallback)
            if label is not None and not answer.fallback:  # a fallback is not the model's
                judged += [{"prediction_id": p.prediction_id, "label": label}
                           for p in answer.predictions]  # fmt: skip
        for start in range(0, len(judged), 500):
            batch = judged[start : start + 500]
            idem = f"replay-{plant}-verdicts-{batch[0]['prediction_id']}"
            counts["outcomes"] += client.post_outcomes(batch, idempotency_key=idem).created
    ordered = sorted(latencies) or [float("nan")]
    summary = {
        **counts,
        "p50_ms": ordered[len(ordered) // 2],
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }
    typer.echo(json.dumps(summary) if format == "json" else str(summary))


def supernode_spec(
    *,
    plant_id: str,
    superlink: str,
    root_cert: Path | None,
    auth_key: Path | None,
    data_dir: Path | None,
    state_dir: Path,
    runtime_port: int,
) -> SuperNodeSpec:
    """Describe this plant's SuperNode for ``federation.flower.processes.start_supernode``.

    The node config carries the plant id and, when given, its local data directory: the
    ClientApp reads only that directory.
    """
    from federation.flower.processes import SuperNodeSpec

    node_config: dict[str, str | int | float] = {}
    if data_dir is not None:
        node_config["data-dir"] = str(data_dir.resolve())
    return SuperNodeSpec(
        plant_id=plant_id,
        superlink_address=superlink,
        runtime_port=runtime_port,
        state_dir=state_dir,
        root_certificate=None if root_cert is None else root_cert.resolve(),
        auth_private_key=None if auth_key is None else auth_key.resolve(),
        node_config=node_config,
    )


@app.command()
def federate(
    plant: PlantOpt = None,
    superlink: Annotated[
        str, typer.Option("--superlink", help="host:port of the hub-side SuperLink.")
    ] = "127.0.0.1:9092",
    root_cert: Annotated[
        Path | None, typer.Option("--root-cert", help="CA certificate of the SuperLink's TLS.")
    ] = None,
    auth_key: Annotated[
        Path | None,
        typer.Option("--auth-key", help="This SuperNode's OpenSSH private key (node auth)."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="The plant's local training data.")
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Flower state and logs (var/node-<plant>).")
    ] = None,
    runtime_port: Annotated[int, typer.Option(help="The SuperNode's Runtime API port.")] = 9200,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Plain gRPC without TLS (tests only).")
    ] = False,
) -> None:
    """Run this plant's Flower SuperNode until stopped (no telemetry, update check or installs)."""
    import signal

    from federation.flower.processes import start_supernode

    if root_cert is None and not insecure:
        raise typer.BadParameter(
            "give --root-cert (or --insecure for tests)", param_hint="--root-cert"
        )
    settings = _settings(plant, None, None)
    state = state_dir or (settings.data_path / "flower")
    spec = supernode_spec(
        plant_id=settings.plant_id,
        superlink=superlink,
        root_cert=root_cert,
        auth_key=auth_key,
        data_dir=data_dir,
        state_dir=state,
        runtime_port=runtime_port,
    )
    process = start_supernode(spec, log_dir=state / "logs")
    typer.echo(
        f"SuperNode of {settings.plant_id} started (pid {process.pid}, log {process.log_path})"
    )

    def _terminate(*_: object) -> None:
        # Stopping waits on the SuperNode, which the interrupted wait below still holds the
        # lock for; so the handler only interrupts, and the stop happens outside it.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = process.popen.wait()
    except KeyboardInterrupt:
        process.stop()
        code = 0
    if code not in (0, -signal.SIGTERM):
        typer.echo(process.log_tail(), err=True)
        raise typer.Exit(1)


def _units(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


@app.command("replay-fleet")
def replay_fleet(
    node: Annotated[str, typer.Option(help="Node URL.")] = "http://127.0.0.1:8200",
    subset: Annotated[str, typer.Option(help="C-MAPSS subset (test split).")] = "FD001",
    units: Annotated[str, typer.Option(help="Unit ids, e.g. 1-50 or 3,7,9.")] = "1-100",
    every: Annotated[int, typer.Option(help="Cycles between two predictions of an engine.")] = 5,
    slots: Annotated[int, typer.Option(help="Engines running at once (per request).")] = 10,
    offset: Annotated[
        list[str] | None, typer.Option(help="Sensor recalibration to inject, e.g. s11=0.6.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Order in which units join the fleet.")] = 7,
    post_failures: Annotated[
        bool, typer.Option(help="Then post the units' failure records to /v1/outcomes.")
    ] = True,
    key: KeyOpt = None,
    format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Replay C-MAPSS test units as a running fleet through ``/v1/predict`` (monitoring demo).

    One prediction per engine every ``--every`` cycles; with ``--post-failures`` the units'
    maintenance records (last cycle + true RUL) follow, so realized metrics can be computed.
    """
    from plant_node.client import NodeClient
    from plant_node.replay import failure_records, fleet_requests

    shift = {k: float(v) for k, _, v in (o.partition("=") for o in offset or [])}
    chosen = _units(units)
    counts = {"requests": 0, "predictions": 0, "fallback": 0, "outcomes": 0}
    with NodeClient(node, timeout=60.0, key=key) as client:
        for records in fleet_requests(
            subset, chosen, slots=slots, every=every, offset=shift, seed=seed
        ):
            answer = client.predict("cmapss", records)
            counts["requests"] += 1
            counts["predictions"] += len(answer.predictions)
            counts["fallback"] += int(answer.fallback)
        if post_failures:
            key = f"replay-{subset}-{units}-failures"[:200]
            result = client.post_outcomes(failure_records(subset, chosen), idempotency_key=key)
            counts["outcomes"] = result.created
    typer.echo(json.dumps(counts) if format == "json" else str(counts))


def format_monitoring(summaries: list[dict[str, Any]]) -> str:
    """Render run summaries as the estimated-vs-realized table plus the alerts raised."""
    lines: list[str] = []
    for s in summaries:
        lines.append(
            f"{s['baseline']} {s['model_name']} {s['model_version']}: {s['status']}"
            + (f" ({s['detail']})" if s.get("detail") else "")
        )
        chunks = s.get("chunks") or []
        if chunks:
            lines.append(
                f"  {'chunk':>5} {'start':<26} {'rows':>5} {'metric':<7} {'estimated':>9} "
                f"{'bounds':<19} {'realized':>8} {'labels':>6}  top drift"
            )
        for c in chunks:

            def num(v: object) -> str:
                return f"{v:.3f}" if isinstance(v, float) else "-"

            bounds = f"[{num(c['lower'])}, {num(c['upper'])}]"
            top = ", ".join(f"{n} {v:.2f}" for n, v in c["top_drift"][:2])
            lines.append(
                f"  {c['chunk']:>5} {str(c['start'])[:26]:<26} {c['n_rows']:>5} "
                f"{str(c['metric'] or '-'):<7} {num(c['estimated']):>9} {bounds:<19} "
                f"{num(c['realized']):>8} {c['n_labels']:>6}  {top}"
            )
        for a in s.get("raised") or []:
            lines.append(f"  ALERT {a['kind']}: {a['description']}")
    return "\n".join(lines)


@app.command()
def monitor(
    once: Annotated[bool, typer.Option("--once", help="Run once and exit.")] = False,
    plant: PlantOpt = None,
    data_dir: DataDirOpt = None,
    baseline: Annotated[str | None, typer.Option(help="Only this baseline.")] = None,
    format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Run the monitoring job on the node's prediction log (``--once``, or every interval).

    Fits the reference monitor on the first run where the reference period is labelled,
    stores chunk results and alerts, and queues the anonymized report for the hub.
    """
    import time

    from plant_node.db import upgrade_database
    from plant_node.monitoring.flows import run_node_monitoring

    settings = _settings(plant, None, data_dir)
    settings.ensure_dirs()
    upgrade_database(settings.db_url)
    while True:
        summaries = [s.to_dict() for s in run_node_monitoring(settings, baseline=baseline)]
        if format == "json":
            typer.echo(json.dumps(summaries, default=str))
        else:
            typer.echo(format_monitoring(summaries) or "no logged predictions to monitor")
        if once:
            if any(s["status"] == "failed" for s in summaries):
                raise typer.Exit(1)
            return
        time.sleep(settings.monitor_interval_s)
