"""``millwright hub audit ...``: verify the chain and export it, straight from the database.

Both read the hub's database (``MILLWRIGHT_HUB_DATABASE_URL``) rather than the API: the
check must not depend on the service being audited, and a million entries stream faster
through a server-side cursor than through pages.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail.")


class _Format:
    JSONL = "jsonl"


@app.command("verify")
def verify(
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head", help="A head hash recorded earlier; it must still be in the chain"
        ),
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Recompute the chain; name the first entry edited, deleted, inserted or reordered.

    Prints the chain head (keep it somewhere else, then pass it as --expect-head to detect
    a cut tail). Exits 1 when the chain is broken.
    """
    from hub.audit import service as audit_service
    from hub.config import HubSettings
    from hub.db import make_engine, make_session_factory

    engine = make_engine(HubSettings())
    try:
        with make_session_factory(engine)() as session:
            result = audit_service.verify(session=session, expect_head=expect_head)
    finally:
        engine.dispose()
    if output == "json":
        typer.echo(json.dumps(result.as_dict()))
    elif result.ok:
        typer.echo(
            f"audit chain intact: {result.entries} entries\n"
            f"head: entry {result.head_seq} {result.head_hash}"
        )
    else:
        typer.echo(
            f"audit chain BROKEN ({result.kind}) at entry {result.seq}: {result.problem}\n"
            f"verified up to entry {result.head_seq} {result.head_hash}",
            err=True,
        )
    if not result.ok:
        raise typer.Exit(1)


@app.command("export")
def export(
    since: Annotated[str | None, typer.Option(help="ISO 8601 time, inclusive")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time, exclusive")] = None,
    output: Annotated[str, typer.Option("--format", help="jsonl (one entry per line)")] = "jsonl",
) -> None:
    """Write the entries from --since to --until as JSON lines (with their hashes)."""
    from federation.errors import MillwrightError
    from hub.audit import service as audit_service
    from hub.config import HubSettings
    from hub.db import make_engine, make_session_factory

    if output != _Format.JSONL:
        raise typer.BadParameter("the only export format is jsonl")
    engine = make_engine(HubSettings())
    try:
        with make_session_factory(engine)() as session:
            write = sys.stdout.write
            for line in audit_service.export_lines(session=session, since=since, until=until):
                write(line + "\n")
    except MillwrightError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
