"""``millwright hub retraining list|show|why``: retraining requests and why models changed.

Every command calls the typed :class:`~federation.hub_client.HubClient` over HTTP; output is
a rich table, or ``--format json`` for scripts.
"""

from __future__ import annotations

from itertools import islice
from typing import Annotated

import typer

from hub.remote_cli import DEFAULT_URL, Format, FormatOpt, TokenOpt, UrlOpt
from hub.remote_cli import hub_client as _client
from hub.remote_cli import print_data as _print

app = typer.Typer(no_args_is_help=True, help="Retraining requests, decisions and candidates.")


@app.command("list")
def retraining_list(
    plant: Annotated[str | None, typer.Option(help="Only this plant")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model")] = None,
    decision: Annotated[
        str | None, typer.Option(help="Only this decision (local_fine_tune, federated, refused)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first")] = 50,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """List triggers fired by plants, the hub's decisions and their candidates."""
    from federation.retraining_view import requests_table

    with _client(url, token) as hub:
        found = hub.iter_retraining_requests(plant_id=plant, model=model, decision=decision)
        rows = list(islice(found, limit))
    _print(rows, output, lambda: requests_table(rows))


@app.command("show")
def retraining_show(
    plant: Annotated[str, typer.Argument(help="Plant id")],
    request_id: Annotated[str, typer.Argument(help="The request id the plant sent")],
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Show one request's chain: request, decision, candidate, promotion, audit entries."""
    from federation.retraining_view import chain_view

    with _client(url, token) as hub:
        chain = hub.retraining_chain(plant, request_id)
    _print(chain, output, lambda: chain_view(chain))


@app.command("why")
def retraining_why(
    version_id: Annotated[int, typer.Argument(help="Version id")],
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Why did this model change: the retraining chain that produced a version."""
    from federation.retraining_view import chain_view

    with _client(url, token) as hub:
        chain = hub.why_version(version_id)
    _print(chain, output, lambda: chain_view(chain))
