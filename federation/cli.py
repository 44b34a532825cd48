"""``millwright federation``: certificates, a local Flower deployment, federated runs."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

app = typer.Typer(
    help="Federated campaigns, certificates and evaluation.", no_args_is_help=True
)

FormatOpt = Annotated[
    Literal["text", "json"], typer.Option("--format", help="Output format.")
]
VarDirOpt = Annotated[
    Path, typer.Option("--var-dir", help="Flower state, certificates and logs.")
]


def _emit(data: dict[str, Any], output_format: str) -> None:
    if output_format == "json":
        typer.echo(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            typer.echo(f"{key}: {value}")


def _parse_plant(spec: str) -> tuple[str, Path | None]:
    plant, _, data_dir = spec.partition("=")
    return plant, (Path(data_dir) if data_dir else None)


def _parse_config(items: list[str]) -> dict[str, str | int | float | bool]:
    out: dict[str, str | int | float | bool] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--config")
        value: str | int | float | bool = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if raw in ("true", "false"):
            value = raw == "true"
        out[key] = value
    return out


@app.command()
def certs(
    var_dir: VarDirOpt = Path("var/flower"),
    plant: Annotated[
        list[str] | None, typer.Option("--plant", help="Plant id to make a SuperNode key pair for.")
    ] = None,
    host: Annotated[
        list[str] | None, typer.Option("--host", help="Extra SuperLink host name or IP.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Regenerate even if files exist.")] = False,
    output_format: FormatOpt = "text",
) -> None:
    """Generate the CA, the SuperLink's TLS certificate and SuperNode auth key pairs."""
    from federation.flower.certs import generate_node_keys, generate_tls
    from federation.flower.deployment import ensure_certificates, ensure_node_keys
    from federation.flower.settings import FlowerSettings

    settings = FlowerSettings(var_dir=var_dir, server_hosts=list(host or []))
    tls = (
        generate_tls(settings.certs_dir, hosts=settings.server_hosts)
        if force
        else ensure_certificates(settings)
    )
    keys = {}
    for plant_id in plant or []:
        files = (
            generate_node_keys(settings.certs_dir / "supernodes", plant_id)
            if force
            else ensure_node_keys(settings, plant_id)
        )
        keys[plant_id] = {"private": str(files.private_key), "public": str(files.public_key)}
    _emit(
        {
            "ca_cert": str(tls.ca_cert),
            "server_cert": str(tls.server_cert),
            "server_key": str(tls.server_key),
            "supernode_keys": keys,
        },
        output_format,
    )


@app.command()
def up(
    plant: Annotated[
        list[str], typer.Option("--plant", help="plant-id[=data-dir]; one SuperNode each.")
    ],
    var_dir: VarDirOpt = Path("var/flower"),
    port: Annotated[int, typer.Option(help="SuperLink port (all its HTTP APIs).")] = 9092,
    node_base_port: Annotated[int, typer.Option(help="First SuperNode runtime port.")] = 9200,
    insecure: Annotated[
        bool, typer.Option(help="No TLS and no node authentication (tests only).")
    ] = False,
) -> None:
    """Start a SuperLink and one SuperNode per plant here; stop them on Ctrl-C."""
    from federation.flower.deployment import LocalFederation, PlantSite
    from federation.flower.settings import FlowerSettings

    settings = FlowerSettings(
        var_dir=var_dir, superlink_port=port, supernode_base_port=node_base_port,
        tls=not insecure, node_auth=not insecure,
    )
    sites = [PlantSite(*_parse_plant(p)) for p in plant]
    with LocalFederation(settings, sites) as federation:
        mode = "TLS + node auth" if settings.tls else "insecure"
        typer.echo(f"SuperLink {settings.superlink_address} ({mode})")
        typer.echo(f"SuperNodes: {federation.node_plants or [s.plant_id for s in sites]}")
        typer.echo(f"logs: {settings.logs_dir}")
        stop = False

        def _stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        try:
            while not stop:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


@app.command()
def run(
    results: Annotated[Path, typer.Option(help="Where the run writes its results JSON.")],
    superlink: Annotated[str, typer.Option(help="SuperLink host:port.")] = "127.0.0.1:9092",
    root_cert: Annotated[
        Path | None, typer.Option(help="CA certificate (default <var-dir>/certs/ca.crt).")
    ] = None,
    insecure: Annotated[bool, typer.Option(help="Plain HTTP SuperLink (tests only).")] = False,
    var_dir: VarDirOpt = Path("var/flower"),
    baseline: Annotated[str, typer.Option(help="Task (baseline) to train.")] = "toy-linear",
    strategy: Annotated[
        str, typer.Option(help="fedavg | fedprox | fedtrimmedavg | fedmedian | fedavgm | fedadam")
    ] = "fedavg",
    rounds: Annotated[int, typer.Option(help="Server rounds.")] = 2,
    local_epochs: Annotated[int, typer.Option(help="Local epochs per round.")] = 1,
    min_participants: Annotated[int, typer.Option(help="Valid updates a round needs.")] = 2,
    model: Annotated[Path | None, typer.Option(help="Where to save the global .npz.")] = None,
    config: Annotated[
        list[str] | None, typer.Option("--config", "-c", help="Extra run config key=value.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds before the run is stopped.")] = 1800.0,
    output_format: FormatOpt = "text",
) -> None:
    """Start a federated run on a running SuperLink, wait for it, print the outcome."""
    run_config: dict[str, str | int | float | bool] = {
        "baseline": baseline,
        "strategy": strategy,
        "num-server-rounds": rounds,
        "local-epochs": local_epochs,
        "min-participants": min_participants,
        **_parse_config(config or []),
    }
    from federation.flower.environment import apply_to_current_process

    apply_to_current_process(flwr_home=var_dir / "cli-home")
    from federation.flower import runner
    from federation.flower.control import ControlClient

    ca = None if insecure else (root_cert or var_dir / "certs" / "ca.crt")
    with ControlClient(superlink, ca, allow_insecure=insecure) as control:
        report = runner.run_and_wait(
            control, run_config=run_config, results_path=results, model_path=model,
            timeout=timeout,
        )
    result = report.result
    _emit(
        {
            "run_id": report.state.run_id,
            "flower_status": f"{report.state.status}:{report.state.sub_status}",
            "status": result.status if result else "unknown",
            "failure": result.failure.model_dump() if result and result.failure else None,
            "participants": result.model.lineage.participants if result and result.model else [],
            "model": result.model.path if result and result.model else None,
            "results": str(results),
        },
        output_format,
    )
    if not report.state.succeeded:
        raise typer.Exit(code=1)


@app.command()
def evaluate(
    quick: Annotated[bool, typer.Option(help="Tiny budget, for smoke runs.")] = False,
    budget: Annotated[
        str,
        typer.Option(help="reduced (2,000 windows per plant) | full (every window; hours) | quick"),
    ] = "reduced",
    out: Annotated[Path, typer.Option(help="Results JSON.")] = Path(
        "benchmarks/results/federation.json"
    ),
    output_format: FormatOpt = "text",
) -> None:
    """Compare local, centralized, FedAvg, FedProx and personalized models on C-MAPSS."""
    from federation.evaluation import BUDGETS, evaluate_federation, markdown_table

    if budget not in BUDGETS:
        raise typer.BadParameter(f"budget must be one of {', '.join(BUDGETS)}")
    doc = evaluate_federation(BUDGETS["quick" if quick else budget], out)
    if output_format == "json":
        typer.echo(json.dumps(doc, indent=2))
    else:
        typer.echo(markdown_table(doc))
        typer.echo(f"targets: {doc['targets']}")
        typer.echo(f"written to {out}")
