"""``millwright hub rollout start|status|list|pause|resume|abort``, ``rollback``, ``inventory``.

Every command calls the typed :class:`~federation.hub_client.HubClient` over HTTP; output is
a rich table, or ``--format json`` for scripts.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from hub.remote_cli import DEFAULT_URL, Format, FormatOpt, TokenOpt, UrlOpt
from hub.remote_cli import hub_client as _client
from hub.remote_cli import print_data as _print

rollout_app = typer.Typer(no_args_is_help=True, help="Staged rollouts across plants.")


@rollout_app.command("start")
def rollout_start(
    version_id: Annotated[int, typer.Argument(help="Version id to roll out")],
    plan: Annotated[str, typer.Option(help="Rollout plan, id@version")],
    gate: Annotated[str | None, typer.Option(help="Promotion gate for the champion step")] = None,
    plant: Annotated[
        list[str] | None, typer.Option("--plant", help="Limit the fleet (repeat)")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded)")] = "",
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Start a rollout; the hub's engine moves each plant through shadow, canary, champion."""
    from federation.fleet_view import rollout_table
    from federation.schemas.rollouts import RolloutCreate

    body = RolloutCreate(
        plan=plan, version_id=version_id, gate=gate, plants=plant or None, reason=reason
    )
    with _client(url, token) as hub:
        row = hub.start_rollout(body)
    _print(row, output, lambda: rollout_table(row))


@rollout_app.command("status")
def rollout_status(
    rollout_id: Annotated[int, typer.Argument(help="Rollout id")],
    wait: Annotated[bool, typer.Option(help="Poll until the rollout ends")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls with --wait")] = 2.0,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Show a rollout's waves, plants and steps (``--wait``: until it ends)."""
    from federation.fleet_view import rollout_table

    with _client(url, token) as hub:
        row = hub.get_rollout(rollout_id)
        while wait and row.status.value in ("running", "paused"):
            time.sleep(interval)
            row = hub.get_rollout(rollout_id)
    _print(row, output, lambda: rollout_table(row))


rollout_app.command("show", help="Same as status: waves, plants and steps (--wait).")(
    rollout_status
)


@rollout_app.command("list")
def rollout_list(
    status: Annotated[str | None, typer.Option(help="Only this status")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model")] = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """List rollouts."""
    from federation.fleet_view import rollouts_table

    with _client(url, token) as hub:
        rows = list(hub.iter_rollouts(status=status, model=model))
    _print(rows, output, lambda: rollouts_table(rows))


def _act(action: str, rollout_id: int, reason: str, url: str, token: str, output: Format) -> None:
    from federation.fleet_view import rollout_table

    with _client(url, token) as hub:
        row = hub.rollout_action(rollout_id, action, reason=reason)
    _print(row, output, lambda: rollout_table(row))


@rollout_app.command("pause")
def rollout_pause(
    rollout_id: Annotated[int, typer.Argument(help="Rollout id")],
    reason: Annotated[str, typer.Option(help="Why (recorded)")] = "",
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Pause a running rollout."""
    _act("pause", rollout_id, reason, url, token, output)


@rollout_app.command("resume")
def rollout_resume(
    rollout_id: Annotated[int, typer.Argument(help="Rollout id")],
    reason: Annotated[str, typer.Option(help="Why (recorded)")] = "",
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Resume a paused or halted rollout."""
    _act("resume", rollout_id, reason, url, token, output)


@rollout_app.command("abort")
def rollout_abort(
    rollout_id: Annotated[int, typer.Argument(help="Rollout id")],
    reason: Annotated[str, typer.Option(help="Why (recorded)")] = "",
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Abort a rollout: its current wave is rolled back, later waves never start."""
    _act("abort", rollout_id, reason, url, token, output)


def rollback(
    model: Annotated[str, typer.Option("--model", help="Baseline model")],
    plant: Annotated[str | None, typer.Option("--plant", help="One plant")] = None,
    fleet: Annotated[bool, typer.Option("--fleet", help="Every plant of the model")] = False,
    to: Annotated[int | None, typer.Option("--to", help="Version id (default: previous)")] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded)")] = "",
    wait: Annotated[
        bool, typer.Option(help="Wait until every target node reports serving the version")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait")] = 120.0,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Point champion back at one plant or the whole fleet, in one call."""
    from federation.fleet_view import rollbacks_table
    from federation.schemas.rollouts import RollbackResult

    if (plant is None) == (not fleet):
        typer.echo("error: give either --plant P or --fleet", err=True)
        raise typer.Exit(2)
    started = time.monotonic()
    with _client(url, token) as hub:
        result = hub.rollback(model, plant=plant, fleet=fleet, to=to, reason=reason)
        rows = list(result.items)
        while wait and any(r.confirmed_at is None for r in rows):
            if time.monotonic() - started > timeout:
                missing = [r.plant_id for r in rows if r.confirmed_at is None]
                typer.echo(f"not confirmed after {timeout:.0f} s: {', '.join(missing)}", err=True)
                break
            time.sleep(0.5)
            rows = [r if r.confirmed_at else hub.get_rollback(r.id) for r in rows]
    final = RollbackResult(items=rows)
    _print(final, output, lambda: rollbacks_table(final.items))
    if wait and any(r.confirmed_at is None for r in rows):
        raise typer.Exit(1)
    if wait and output is Format.TABLE:
        typer.echo(f"every node confirmed in {time.monotonic() - started:.1f} s")


def inventory(
    plant: Annotated[str | None, typer.Option("--plant", help="Only this plant")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="ok, stale, diverged or rollout")
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """Which model runs where, trained when, on what data, last validated when, since when."""
    from federation.fleet_view import inventory_csv, inventory_table

    if output not in ("table", "json", "csv"):
        typer.echo("error: --format is table, json or csv", err=True)
        raise typer.Exit(2)
    with _client(url, token) as hub:
        rows = hub.inventory(plant=plant, model=model, status=status).items
    if output == "csv":
        typer.echo(inventory_csv(rows), nl=False)
        return
    _print(rows, Format(output), lambda: inventory_table(rows))


def mount(app: typer.Typer) -> None:
    """Add the fleet commands to ``millwright hub``."""
    app.add_typer(rollout_app, name="rollout")
    app.add_typer(rollout_app, name="rollouts", help="Same as 'rollout'.")
    app.command("rollback")(rollback)
    app.command("inventory")(inventory)
