"""``millwright hub audit ...``: verify the chain and export it, through the API or locally.

By default both call the hub through the typed :class:`~federation.hub_client.HubClient`
(``--url``/``--token``): ``verify`` asks the hub to recompute its chain
(``GET /api/v1/audit/verify``), ``export`` pages through ``GET /api/v1/audit``. With
``--local`` they read the hub's database (``MILLWRIGHT_HUB_DATABASE_URL``) instead: for an
auditor who will not take the audited service's word for it, and a million entries stream
faster through a server-side cursor than through pages.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from hub.remote_cli import DEFAULT_URL, TokenOpt, UrlOpt
from hub.remote_cli import hub_client as _client

app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail.")

LocalOpt = Annotated[
    bool,
    typer.Option(
        "--local", help="Read the hub's database (MILLWRIGHT_HUB_DATABASE_URL), not the API"
    ),
]


class _Format:
    JSONL = "jsonl"


def _verify_local(expect_head: str | None) -> dict[str, Any]:
    from hub.audit import service as audit_service
    from hub.config import HubSettings
    from hub.db import make_engine, make_session_factory

    engine = make_engine(HubSettings())
    try:
        with make_session_factory(engine)() as session:
            result = audit_service.verify(session=session, expect_head=expect_head)
            unsealed = audit_service.unsealed(session=session)
    finally:
        engine.dispose()
    return {**result.as_dict(), "unsealed": unsealed}


@app.command("verify")
def verify(
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head", help="A head hash recorded earlier; it must still be in the chain"
        ),
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    local: LocalOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
) -> None:
    """Recompute the chain; name the first entry edited, deleted, inserted or reordered.

    Prints the chain head (keep it somewhere else, then pass it as --expect-head to detect
    a cut tail). Exits 1 when the chain is broken.
    """
    if local:
        result = _verify_local(expect_head)
    else:
        with _client(url, token) as hub:
            result = hub.verify_audit(expect_head=expect_head).model_dump(mode="json")
    if output == "json":
        typer.echo(json.dumps(result))
    elif result["ok"]:
        typer.echo(
            f"audit chain intact: {result['entries']} entries\n"
            f"head: entry {result['head_seq']} {result['head_hash']}"
        )
    else:
        typer.echo(
            f"audit chain BROKEN ({result['kind']}) at entry {result['seq']}: "
            f"{result['problem']}\n"
            f"verified up to entry {result['head_seq']} {result['head_hash']}",
            err=True,
        )
    if result.get("unsealed") and output != "json":
        typer.echo(f"{result['unsealed']} entries written but not chained yet", err=True)
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("export")
def export(
    since: Annotated[str | None, typer.Option(help="ISO 8601 time, inclusive")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time, exclusive")] = None,
    output: Annotated[str, typer.Option("--format", help="jsonl (one entry per line)")] = "jsonl",
    local: LocalOpt = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
) -> None:
    """Write the entries from --since to --until as JSON lines (with their hashes)."""
    if output != _Format.JSONL:
        raise typer.BadParameter("the only export format is jsonl")
    write = sys.stdout.write
    if not local:
        with _client(url, token) as hub:
            for entry in hub.iter_audit(since=since, until=until, page_size=1000):
                write(entry.model_dump_json() + "\n")
        return
    from federation.errors import MillwrightError
    from hub.audit import service as audit_service
    from hub.config import HubSettings
    from hub.db import make_engine, make_session_factory

    engine = make_engine(HubSettings())
    try:
        with make_session_factory(engine)() as session:
            for line in audit_service.export_lines(session=session, since=since, until=until):
                write(line + "\n")
    except MillwrightError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
