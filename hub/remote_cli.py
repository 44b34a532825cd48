"""Options and helpers shared by the ``millwright hub`` commands that call the hub over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from pydantic import BaseModel

    from federation.hub_client import HubClient

UrlOpt = Annotated[
    str, typer.Option("--url", "--hub-url", envvar="MILLWRIGHT_HUB_URL", help="Hub base URL")
]
TokenOpt = Annotated[
    str, typer.Option("--token", envvar="MILLWRIGHT_HUB_TOKEN", help="Bearer token")
]
DEFAULT_URL = "http://127.0.0.1:8100"


class Format(StrEnum):
    """How commands print data."""

    TABLE = "table"
    JSON = "json"


FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]


@contextmanager
def hub_client(url: str, token: str) -> Iterator[HubClient]:
    """Yield a client of the hub; a hub error prints its code and detail and exits 1."""
    from federation.errors import MillwrightError
    from federation.hub_client import HubClient

    client = HubClient(url, token=token)
    try:
        yield client
    except MillwrightError as exc:
        typer.echo(f"error: {exc.code.value}: {exc.detail}", err=True)
        for item in exc.errors:
            typer.echo(f"  {item.get('path', '')}: {item.get('message', '')}", err=True)
        raise typer.Exit(1) from exc
    finally:
        client.close()


def print_data(data: BaseModel | list[Any], output: Format, table: Callable[[], Any]) -> None:
    """Print ``data`` as JSON, or the rich renderable ``table()`` builds."""
    if output == Format.JSON:
        if isinstance(data, list):
            typer.echo(json.dumps([d.model_dump(mode="json") for d in data]))
        else:
            typer.echo(data.model_dump_json())
        return
    from rich.console import Console

    Console(width=160).print(table())
