"""Rich tables of registry objects, shared by the CLI and the demo."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from federation.schemas.registry import (
    AliasRead,
    BaselineModelRead,
    PlantRead,
    VersionDiff,
    VersionRead,
)


def plants_table(plants: Iterable[PlantRead], title: str = "Hub registry: plants") -> Table:
    """Render plants with their site, lines and hardware profile."""
    table = Table(title=title)
    for column in ("plant", "name", "site", "lines", "hardware"):
        table.add_column(column)
    for p in plants:
        hw = p.hardware_profile
        parts = [
            hw.cpu,
            f"{hw.cores} cores" if hw.cores else "",
            f"{hw.memory_gb:g} GB" if hw.memory_gb else "",
        ]
        if hw.accelerator:
            parts.append(hw.accelerator)
        table.add_row(p.id, p.name, p.site, ", ".join(p.lines), ", ".join(x for x in parts if x))
    return table


def models_table(models: Iterable[BaselineModelRead], title: str = "Baseline models") -> Table:
    """Render baseline models."""
    table = Table(title=title)
    for column in ("id", "name", "task", "dataset", "created"):
        table.add_column(column)
    for m in models:
        table.add_row(str(m.id), m.name, m.task, m.dataset, f"{m.created_at:%Y-%m-%d %H:%M}")
    return table


def versions_table(versions: Iterable[VersionRead], title: str = "Model versions") -> Table:
    """Render versions with plant, lineage and metrics."""
    table = Table(title=title)
    for column in ("id", "model", "version", "plant", "parent", "artifact", "metrics"):
        table.add_column(column)
    for v in versions:
        metrics = ", ".join(f"{k}={val:.4g}" for k, val in sorted(v.metrics.items())[:4])
        table.add_row(
            str(v.id),
            v.model,
            v.version,
            v.plant_id or "all",
            str(v.parent_id or "-"),
            (v.artifact_digest or "-")[:12],
            metrics,
        )
    return table


def diff_table(diff: VersionDiff) -> Table:
    """Render the fields that differ between two versions."""
    table = Table(title=f"Version {diff.a.id} -> {diff.b.id}")
    for column in ("field", str(diff.a.id), str(diff.b.id)):
        table.add_column(column)
    for change in diff.changes:
        table.add_row(change.field, repr(change.a), repr(change.b))
    return table


def aliases_table(aliases: Iterable[AliasRead], title: str = "Aliases") -> Table:
    """Render a plant's aliases."""
    table = Table(title=title)
    for column in ("plant", "model", "alias", "version id", "updated", "by"):
        table.add_column(column)
    for a in aliases:
        table.add_row(
            a.plant_id, a.model, a.alias.value, str(a.version_id),
            f"{a.updated_at:%Y-%m-%d %H:%M:%S}", a.updated_by,
        )
    return table
