"""``millwright node create-key | list-keys | revoke-key``: the node's API keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from plant_node.auth.schemas import NodeRole

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.orm import Session

PlantOpt = Annotated[
    str | None, typer.Option("--plant", help="Plant id (MILLWRIGHT_NODE_PLANT_ID).")
]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default var/node-<plant>).")
]
FormatOpt = Annotated[str, typer.Option("--format", help="text or json")]


def _session(plant: str | None, data_dir: Path | None) -> Iterator[Session]:
    """Migrate the node's database (a key may be made before the first serve) and open it."""
    from plant_node.config import NodeSettings
    from plant_node.db import make_engine, make_session_factory, upgrade_database

    overrides: dict[str, object] = {}
    if plant is not None:
        overrides["plant_id"] = plant
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    settings = NodeSettings(**overrides)  # type: ignore[arg-type]
    settings.ensure_dirs()
    upgrade_database(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def create_key(
    role: Annotated[NodeRole, typer.Option("--role", help="line, engineer or monitor.")],
    name: Annotated[str, typer.Option("--name", help="Who holds it (e.g. line-3, alice).")],
    plant: PlantOpt = None,
    data_dir: DataDirOpt = None,
    format: FormatOpt = "text",
) -> None:
    """Create a node key and print it once (only its sha256 is stored)."""
    from plant_node.auth import service as auth_service

    if not name.strip() or len(name) > 100 or any(ord(c) < 32 for c in name):
        raise typer.BadParameter("1-100 printable characters", param_hint="--name")
    for session in _session(plant, data_dir):
        created = auth_service.create_key(session=session, role=role, name=name)
    if format == "json":
        typer.echo(created.model_dump_json())
    else:
        typer.echo(f"key {created.id} ({created.role.value}, {created.name}): {created.key}")
        typer.echo("Store it now: it is not shown again.", err=True)


def list_keys(
    plant: PlantOpt = None, data_dir: DataDirOpt = None, format: FormatOpt = "text"
) -> None:
    """List the node's keys (never their secrets)."""
    from plant_node.auth import service as auth_service

    for session in _session(plant, data_dir):
        keys = auth_service.list_keys(session=session)
    if format == "json":
        typer.echo(json.dumps([k.model_dump(mode="json") for k in keys]))
        return
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        typer.echo(f"{k.id:>4}  {k.role.value:<8}  {k.prefix}…  {k.name}  ({state})")


def revoke_key(
    key_id: Annotated[int, typer.Argument(help="The key's id (list-keys).", min=1, max=2**62)],
    plant: PlantOpt = None,
    data_dir: DataDirOpt = None,
    format: FormatOpt = "text",
) -> None:
    """Revoke a key; a running node refuses it from its next request on."""
    from federation.errors import NotFound
    from plant_node.auth import service as auth_service

    for session in _session(plant, data_dir):
        try:
            revoked = auth_service.revoke_key(session=session, key_id=key_id)
        except NotFound as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    if format == "json":
        typer.echo(revoked.model_dump_json())
    else:
        typer.echo(f"key {revoked.id} ({revoked.name}) revoked")
