"""``millwright hub ...``: serve the hub, migrate its database, mint tokens, read the registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from federation.schemas.auth import Role, TokenCreate
from hub.audit.cli import app as audit_app
from hub.campaigns.cli import app as campaigns_app
from hub.governance import cli as governance_cli
from hub.registry import cli as registry_cli
from hub.retraining.cli import app as retraining_app
from hub.rollouts import cli as rollouts_cli
from hub.webhooks import cli as webhooks_cli

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from hub.config import HubSettings

app = typer.Typer(no_args_is_help=True, help="Run and administer the central hub.")
db_app = typer.Typer(no_args_is_help=True, help="The hub database (Alembic migrations).")
app.add_typer(db_app, name="db")
app.add_typer(campaigns_app, name="campaigns")
registry_cli.mount(app)
governance_cli.mount(app)
app.add_typer(audit_app, name="audit")
rollouts_cli.mount(app)
webhooks_cli.mount(app)
app.add_typer(retraining_app, name="retraining")


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


@app.command("create-user")
def create_user(
    username: Annotated[str, typer.Option(help="Login name (lowercase slug, unique)")],
    name: Annotated[str, typer.Option("--name", help="Printed name, shown on signatures")],
    role: Annotated[Role, typer.Option(help="admin, data_scientist, plant or executive")],
    plant: Annotated[str | None, typer.Option("--plant", help="Plant id (role plant only)")] = None,
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Add a user account directly in the hub database (no signing secret yet)."""
    from pydantic import ValidationError

    from federation.schemas.auth import UserCreate, UserRead
    from hub.auth import service as auth_service

    try:
        user_in = UserCreate(username=username, printed_name=name, role=role, plant_id=plant)
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"]) from exc
    with _database() as session:
        user = UserRead.model_validate(
            auth_service.create_user(session=session, user_in=user_in, actor="cli")
        )
    if output == OutputFormat.JSON:
        typer.echo(user.model_dump_json())
    else:
        typer.echo(f"user {user.id} {user.username} ({user.printed_name}, {user.role.value})")


@app.command("list-users")
def list_users(output: FormatOpt = OutputFormat.TABLE) -> None:
    """List every user account in the hub database."""
    from federation.schemas.auth import UserRead
    from hub.auth import service as auth_service

    with _database() as session:
        rows = [UserRead.model_validate(u) for u in auth_service.list_users(session=session)]
    if output == OutputFormat.JSON:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows]))
        return
    for r in rows:
        plant = f" plant={r.plant_id}" if r.plant_id else ""
        signs = "can sign" if r.has_signing_secret else "no signing secret"
        typer.echo(f"{r.id:>5}  {r.username:<20} {r.printed_name}  {r.role.value}{plant}  {signs}")


@app.command("set-signing-secret")
def set_signing_secret(
    username: Annotated[str, typer.Option(help="Whose signing secret to set")],
    secret_stdin: Annotated[
        bool, typer.Option("--secret-stdin", help="Read the secret from standard input")
    ] = False,
) -> None:
    """Set a user's signing secret (prompted twice, or read from stdin); only a hash is kept."""
    import sys

    from hub.auth import service as auth_service

    if secret_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = typer.prompt("Signing secret", hide_input=True, confirmation_prompt=True)
    with _database() as session:
        user = auth_service.get_user_by_username_or_raise(session=session, username=username)
        auth_service.set_signing_secret(session=session, user_id=user.id, secret=secret)
    typer.echo(f"signing secret of {username} set")


@app.command("create-token")
def create_token(
    role: Annotated[Role, typer.Option(help="admin, data_scientist, plant or executive")],
    plant: Annotated[str | None, typer.Option("--plant", help="Plant id (role plant only)")] = None,
    name: Annotated[str, typer.Option(help="Who or what holds the token")] = "",
    user: Annotated[
        str | None,
        typer.Option("--user", help="Username the token belongs to (default: a new user)"),
    ] = None,
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Mint a bearer token directly in the hub database (prints the secret once)."""
    from pydantic import ValidationError

    from hub.auth import service as auth_service

    try:
        token_in = TokenCreate(role=role, plant_id=plant, name=name, username=user)
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
    """Revoke a token in the hub database; running hubs refuse it from the next request."""
    from federation.schemas.auth import TokenRead
    from hub.auth import service as auth_service

    settings = _settings()
    with _database(settings) as session:
        revoked = auth_service.revoke_token(session=session, token_id=token_id, actor="cli")
        row = TokenRead.model_validate(revoked)
    if output == OutputFormat.JSON:
        typer.echo(row.model_dump_json())
    else:
        delay = (
            f"within {settings.auth_cache_seconds:g} s (auth_cache_seconds)"
            if settings.auth_cache_seconds
            else "from their next request"
        )
        typer.echo(
            f"token {row.id} ({row.prefix}…, {row.role.value}) revoked at {row.revoked_at}; "
            f"running hubs refuse it {delay}"
        )


@app.command("scheduler")
def scheduler() -> None:
    """Run the hub's scheduler (retraining candidates, key purge) in this one process."""
    from hub.scheduler import JOBS, build_scheduler

    settings = _settings()
    sched = build_scheduler(settings)
    typer.echo(f"hub scheduler: {', '.join(JOBS)} (Ctrl-C stops)")
    try:
        sched.start()
    except (KeyboardInterrupt, SystemExit):
        pass


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings)")] = None,
    certfile: Annotated[
        Path | None, typer.Option(help="PEM server certificate: serve HTTPS (TLS 1.2+)")
    ] = None,
    keyfile: Annotated[Path | None, typer.Option(help="PEM private key of --certfile")] = None,
    client_ca: Annotated[
        Path | None, typer.Option(help="Require client certificates signed by this CA (mTLS)")
    ] = None,
) -> None:
    """Serve the hub with uvicorn: one worker process, keep-alive, uvloop + httptools.

    One worker is the recommended configuration: with several workers uvicorn stalls
    keep-alive clients (uvicorn issue 3149), and the hub's work per request is tiny.
    With ``--certfile/--keyfile`` (or ``MILLWRIGHT_HUB_TLS_*``) it speaks HTTPS only.
    """
    import uvicorn

    from hub.server import server_config

    try:
        config = server_config(
            _settings(),
            host=host,
            port=port,
            certfile=certfile,
            keyfile=keyfile,
            client_ca=client_ca,
        )
    except ValueError as exc:  # InsecureTransport included
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    uvicorn.Server(config).run()


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
