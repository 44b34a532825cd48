"""``millwright hub ...``: serve the hub, migrate its database, mint tokens, read the registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from federation.schemas.auth import Role, TokenCreate
from hub.campaigns.cli import app as campaigns_app

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.config import HubSettings

app = typer.Typer(no_args_is_help=True, help="Run and administer the central hub.")
db_app = typer.Typer(no_args_is_help=True, help="The hub database (Alembic migrations).")
app.add_typer(db_app, name="db")
app.add_typer(campaigns_app, name="campaigns")


class OutputFormat(StrEnum):
    """How commands print data."""

    TABLE = "table"
    JSON = "json"


FormatOpt = Annotated[OutputFormat, typer.Option("--format", help="table or json")]


def _settings() -> HubSettings:
    from hub.config import HubSettings

    return HubSettings()


@contextmanager
def _database(settings: HubSettings | None = None) -> Iterator[Session]:
    """Yield a session on the hub database for one command; a hub error exits with code 1."""
    from federation.errors import MillwrightError
    from hub.db import make_engine, make_session_factory

    engine = make_engine(settings or _settings())
    try:
        with make_session_factory(engine)() as session:
            yield session
    except MillwrightError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: head); safe to run repeatedly."""
    from hub import migrations

    settings = _settings()
    current = migrations.upgrade(settings, revision)
    typer.echo(f"hub database at revision {current} ({_redact(settings.database_url)})")


@db_app.command("current")
def db_current(output: FormatOpt = OutputFormat.TABLE) -> None:
    """Print the database's revision and the migrations' head."""
    from hub import migrations
    from hub.db import make_engine

    engine = make_engine(_settings())
    try:
        current = migrations.current_revision(engine)
    finally:
        engine.dispose()
    head = migrations.head_revision()
    if output == OutputFormat.JSON:
        typer.echo(json.dumps({"current": current, "head": head}))
    else:
        typer.echo(f"current: {current}\nhead:    {head}")


@app.command("create-token")
def create_token(
    role: Annotated[Role, typer.Option(help="admin, data_scientist, plant or executive")],
    plant: Annotated[str | None, typer.Option("--plant", help="Plant id (role plant only)")] = None,
    name: Annotated[str, typer.Option(help="Who or what holds the token")] = "",
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Mint a bearer token directly in the hub database (prints the secret once)."""
    from pydantic import ValidationError

    from hub.auth import service as auth_service

    try:
        token_in = TokenCreate(role=role, plant_id=plant, name=name)
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"]) from exc
    with _database() as session:
        created = auth_service.create_token(session=session, token_in=token_in, actor="cli")
    if output == OutputFormat.JSON:
        typer.echo(created.model_dump_json())
    else:
        typer.echo(created.token)


@app.command("list-tokens")
def list_tokens(output: FormatOpt = OutputFormat.TABLE) -> None:
    """List every token in the hub database (metadata and prefix only, never a secret)."""
    from federation.schemas.auth import TokenRead
    from hub.auth import service as auth_service

    with _database() as session:
        rows = [TokenRead.model_validate(r) for r in auth_service.list_tokens(session=session)]
    if output == OutputFormat.JSON:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows]))
        return
    for r in rows:
        state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active"
        plant = f" plant={r.plant_id}" if r.plant_id else ""
        typer.echo(f"{r.id:>5}  {r.prefix}…  {r.role.value:<14}{plant}  {r.name or '-'}  {state}")


@app.command("revoke-token")
def revoke_token(
    token_id: Annotated[int, typer.Argument(help="Token id (see list-tokens)")],
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Revoke a token in the hub database; running hubs refuse it within auth_cache_seconds."""
    from federation.schemas.auth import TokenRead
    from hub.auth import service as auth_service

    settings = _settings()
    with _database(settings) as session:
        revoked = auth_service.revoke_token(session=session, token_id=token_id)
        row = TokenRead.model_validate(revoked)
    if output == OutputFormat.JSON:
        typer.echo(row.model_dump_json())
    else:
        typer.echo(
            f"token {row.id} ({row.prefix}…, {row.role.value}) revoked at {row.revoked_at}; "
            f"running hubs refuse it within {settings.auth_cache_seconds:g} s"
        )


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings)")] = None,
) -> None:
    """Serve the hub with uvicorn: one worker process, keep-alive, uvloop + httptools.

    One worker is the recommended configuration: with several workers uvicorn stalls
    keep-alive clients (uvicorn issue 3149), and the hub's work per request is tiny.
    """
    import uvicorn

    settings = _settings()
    uvicorn.run(
        "hub.main:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_keep_alive=30,
    )


@app.command("seed-history")
def seed_history(
    plants: Annotated[int, typer.Option(min=1, max=500, help="Plants to enroll.")] = 50,
    models: Annotated[int, typer.Option(min=1, max=4, help="Models per plant.")] = 4,
    days: Annotated[int, typer.Option(min=1, max=400, help="Days of hourly reports.")] = 365,
    batch: Annotated[int, typer.Option(min=1, max=5000, help="Reports per transaction.")] = 1000,
    shard: Annotated[
        str, typer.Option(help="i/n: write every n-th plant from the i-th (parallel seeding).")
    ] = "0/1",
) -> None:
    """Write a synthetic fleet history (default 50 plants x 4 models x 1 year, hourly).

    Goes through the registry services and the batch ingest service function, so every
    report is validated, de-duplicated and rolled up; re-running finds only duplicates.
    For dashboards demos and benchmarks, never on a production hub.
    """
    import time

    from hub.db import make_engine, make_session_factory
    from hub.metrics.flows import seed_history as seed

    settings = _settings()
    engine = make_engine(settings)
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % (batch * 50) < batch or done == total:
            rate = done / max(time.perf_counter() - started, 1e-9)
            typer.echo(f"{done}/{total} reports ({rate:.0f}/s)")

    try:
        written = seed(
            session_factory=make_session_factory(engine),
            plants=plants,
            models=models,
            hours=24 * days,
            batch=batch,
            progress=progress,
            shard=(int(shard.split("/")[0]), int(shard.split("/")[1])),
        )
    finally:
        engine.dispose()
    typer.echo(f"seeded {written} reports in {time.perf_counter() - started:.0f} s")


@app.command("plants")
def plants(
    url: Annotated[
        str, typer.Option(envvar="MILLWRIGHT_HUB_URL", help="Hub base URL")
    ] = "http://127.0.0.1:8100",
    token: Annotated[str, typer.Option(envvar="MILLWRIGHT_HUB_TOKEN", help="Bearer token")] = "",
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """List the enrolled plants (through the hub client)."""
    from federation.hub_client import HubClient
    from federation.registry_view import plants_table

    with HubClient(url, token=token) as client:
        rows = list(client.iter_plants())
    if output == OutputFormat.JSON:
        typer.echo(json.dumps([p.model_dump(mode="json") for p in rows]))
    else:
        from rich.console import Console

        Console().print(plants_table(rows))


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
