"""``millwright node retraining status|evaluate|history``: triggers, firings, the scheduler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from plant_node.config import NodeSettings

app = typer.Typer(help="Retraining triggers at this plant.", no_args_is_help=True)

FormatOpt = Annotated[str, typer.Option("--format", help="text or json")]
PlantOpt = Annotated[str | None, typer.Option("--plant", help="Plant id.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data directory.")]


def _settings(plant: str | None, data_dir: Path | None) -> NodeSettings:
    overrides: dict[str, object] = {}
    if plant is not None:
        overrides["plant_id"] = plant
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    return NodeSettings(**overrides)  # type: ignore[arg-type]


def status_data(settings: NodeSettings) -> dict[str, Any]:
    """Return what ``status`` prints: every trigger's current verdict, jobs and last firings.

    Evaluates the triggers without firing them (a read-only transaction, rolled back).
    """
    from plant_node.db import make_engine, make_session_factory
    from plant_node.outbox import service as outbox_service
    from plant_node.retraining import service
    from plant_node.retraining.flows import policy_of, reference_chunks
    from plant_node.scheduling import service as ledger

    engine = make_engine(settings.db_url)
    policy = policy_of(settings)
    try:
        with make_session_factory(engine)() as session:
            jobs = ledger.list_jobs(session=session)
            runs = ledger.list_runs(session=session, job="retraining.evaluate", limit=1)
            firings = service.list_firings(session=session, limit=5)
            pending = [
                i.idempotency_key
                for i in outbox_service.list_items(session=session, stream=service.STREAM)
                if i.status == "pending"
            ]
            session.commit = session.flush  # type: ignore[method-assign]  # dry run
            checks = service.evaluate(
                session=session, policy=policy, plant_id=settings.plant_id,
                metric_chunks=settings.retraining_metric_chunks,
                reference_chunks=reference_chunks(settings),
                known_failure_types=settings.retraining_known_failure_types,
            )
            session.rollback()
    finally:
        engine.dispose()
    return {
        "policy": policy.ref,
        "label_budget_per_day": policy.label_budget_per_day,
        "jobs": [
            {"name": j.name, "next_run_at": j.next_run_at.isoformat() if j.next_run_at else None}
            for j in jobs
        ],
        "last_evaluation": (
            {"scheduled_at": runs[0].scheduled_at.isoformat(), "status": runs[0].status}
            if runs else None
        ),
        "triggers": [
            {
                "baseline": c.baseline, "model_version": c.model_version, "trigger": c.trigger,
                "condition": c.condition, "verdict": "fire" if c.verdict == "pass" else c.verdict,
                "held": c.refusal, "message": c.message,
            }
            for c in checks
        ],
        "recent_firings": [f.model_dump(mode="json") for f in firings],
        "requests_waiting_in_outbox": pending,
    }  # fmt: skip


@app.command()
def status(plant: PlantOpt = None, data_dir: DataDirOpt = None, format: FormatOpt = "text") -> None:
    """Show each trigger's verdict now (dry run), the scheduler's jobs and recent firings."""
    data = status_data(_settings(plant, data_dir))
    if format == "json":
        typer.echo(json.dumps(data, default=str))
        return
    typer.echo(f"policy {data['policy']}, label budget {data['label_budget_per_day']}/day")
    for job in data["jobs"]:
        typer.echo(f"job {job['name']}: next run {job['next_run_at'] or 'paused'}")
    if not data["jobs"]:
        typer.echo("no scheduler jobs stored (start `millwright node scheduler`)")
    if not data["triggers"]:
        typer.echo("no monitored champion yet: triggers read monitoring's chunks")
    for t in data["triggers"]:
        held = f" [held: {t['held']}]" if t["held"] else ""
        typer.echo(
            f"{t['baseline']} {t['model_version']} {t['trigger']}: {t['verdict']}{held} "
            f"- {t['message']}"
        )
    if data["requests_waiting_in_outbox"]:
        typer.echo(f"{len(data['requests_waiting_in_outbox'])} request(s) waiting in the outbox")


@app.command()
def evaluate(
    plant: PlantOpt = None, data_dir: DataDirOpt = None, format: FormatOpt = "text"
) -> None:
    """Evaluate the triggers now, as the scheduler's ``retraining.evaluate`` job does.

    Firings are stored and their requests queued on the outbox (the serving process
    delivers them); evaluating again over the same records queues nothing new.
    """
    from plant_node.db import make_engine, make_session_factory, upgrade_database
    from plant_node.retraining.flows import evaluate_triggers

    settings = _settings(plant, data_dir)
    settings.ensure_dirs()
    upgrade_database(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        fired = evaluate_triggers(settings, make_session_factory(engine))
    finally:
        engine.dispose()
    if format == "json":
        typer.echo(json.dumps([f.model_dump(mode="json") for f in fired]))
        return
    if not fired:
        typer.echo("no trigger fired")
    for f in fired:
        typer.echo(f"FIRED {f.baseline} {f.model_version} {f.trigger} ({f.condition}): {f.summary}")


@app.command()
def history(
    plant: PlantOpt = None,
    data_dir: DataDirOpt = None,
    baseline: Annotated[str | None, typer.Option(help="Only this baseline.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    format: FormatOpt = "text",
) -> None:
    """List the triggers that fired, newest first, with their evidence."""
    from plant_node.db import make_engine, make_session_factory
    from plant_node.retraining import service

    settings = _settings(plant, data_dir)
    engine = make_engine(settings.db_url)
    try:
        with make_session_factory(engine)() as session:
            firings = service.list_firings(session=session, baseline=baseline, limit=limit)
    finally:
        engine.dispose()
    if format == "json":
        typer.echo(json.dumps([f.model_dump(mode="json") for f in firings]))
        return
    if not firings:
        typer.echo("no trigger has fired")
    for f in firings:
        typer.echo(
            f"{f.fired_at:%Y-%m-%d %H:%M} {f.baseline} {f.model_version} {f.trigger} "
            f"({f.condition}) {f.id}: {f.summary}"
        )
