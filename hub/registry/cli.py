"""``millwright hub models|versions|diff|aliases``: registry reads through the hub client."""

from __future__ import annotations

from itertools import islice
from typing import Annotated

import typer

from hub.remote_cli import DEFAULT_URL, Format, FormatOpt, TokenOpt, UrlOpt
from hub.remote_cli import hub_client as _client
from hub.remote_cli import print_data as _print


def models(
    url: UrlOpt = DEFAULT_URL, token: TokenOpt = "", output: FormatOpt = Format.TABLE
) -> None:
    """List the baseline models."""
    from federation.registry_view import models_table

    with _client(url, token) as hub:
        rows = list(hub.iter_models())
    _print(rows, output, lambda: models_table(rows))


def versions(
    model: Annotated[str | None, typer.Option(help="Only versions of this model")] = None,
    plant: Annotated[str | None, typer.Option("--plant", help="Only this plant's versions")] = None,
    tag: Annotated[str | None, typer.Option(help="key or key=value")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows")] = 50,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """List model versions, newest first."""
    from federation.registry_view import versions_table

    with _client(url, token) as hub:
        rows = list(islice(hub.iter_versions(model=model, plant_id=plant, tag=tag), limit))
    _print(rows, output, lambda: versions_table(rows))


def diff(
    a: Annotated[int, typer.Argument(help="Version id")],
    b: Annotated[int, typer.Argument(help="Version id")],
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """Show what changed from version A to version B."""
    from federation.registry_view import diff_table

    with _client(url, token) as hub:
        result = hub.diff_versions(a, b)
    _print(result, output, lambda: diff_table(result))


def aliases(
    plant: Annotated[str, typer.Argument(help="Plant id")],
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
    output: FormatOpt = Format.TABLE,
) -> None:
    """List a plant's aliases (champion, challenger, shadow)."""
    from federation.registry_view import aliases_table

    with _client(url, token) as hub:
        rows = hub.list_aliases(plant).items
    _print(rows, output, lambda: aliases_table(rows, title=f"Aliases of {plant}"))



def mount(app: typer.Typer) -> None:
    """Add the registry-read commands to ``millwright hub``."""
    for name, command in (
        ("models", models),
        ("versions", versions),
        ("diff", diff),
        ("aliases", aliases),
    ):
        app.command(name)(command)
