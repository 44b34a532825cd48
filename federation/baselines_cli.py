"""``millwright baselines``: the commands of ``baselines.cli`` plus ``publish`` (needs the hub).

The ``millwright`` entry point mounts this group; ``baselines.cli`` stays free of the hub
client so that the ``baselines`` layer never imports ``federation``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from baselines.cli import (
    DEFAULT_ROOT,
    EXPORT_DIR,
    FormatOpt,
    OutputFormat,
    PlantOpt,
    Which,
    targets,
)
from baselines.cli import app as _baselines_app

app = typer.Typer(
    help=_baselines_app.info.help,
    no_args_is_help=True,
    add_completion=False,
)
# Reuse the baselines commands without mutating ``baselines.cli.app``.
app.registered_commands.extend(_baselines_app.registered_commands)


@app.command()
def publish(
    which: Annotated[Which, typer.Argument(help="cmapss, ai4i or all")] = Which.ALL,
    plant: PlantOpt = None,
    root: Annotated[Path, typer.Option("--root", help="Model directory root")] = DEFAULT_ROOT,
    hub_url: Annotated[str, typer.Option(help="Hub URL")] = "http://127.0.0.1:8100",
    token: Annotated[
        str | None, typer.Option(help="Hub token (default: $MILLWRIGHT_HUB_TOKEN)")
    ] = None,
    code_version: Annotated[str, typer.Option(help="Code version to record")] = "",
    fmt: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Publish exported baselines (artifact + metadata + recipe) to the hub registry."""
    from baselines.models.pipeline import plant_key
    from baselines.recipes import Baseline
    from federation.baselines_publish import publish_export
    from federation.hub_client import HubClient

    token = token or os.environ.get("MILLWRIGHT_HUB_TOKEN")
    rows = []
    with HubClient(hub_url, token=token) as client:
        for baseline, p in targets(which, plant):
            export_dir = root / baseline / plant_key(Baseline(baseline), p) / EXPORT_DIR
            if not (export_dir / "metadata.json").exists():
                rows.append({"baseline": baseline, "plant": p, "status": "missing export"})
                continue
            published = publish_export(client, export_dir, code_version=code_version)
            rows.append(
                {"baseline": baseline, "plant": p, "status": "published", **asdict(published)}
            )
    if fmt is OutputFormat.JSON:
        typer.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    for r in rows:
        typer.echo(
            f"{r['baseline']:7} {str(r['plant'] or 'all'):6} {r['status']:15} "
            f"{r.get('model', '')} {r.get('version', '')}"
        )


__all__ = ["app"]
