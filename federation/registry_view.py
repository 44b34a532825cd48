"""Rich tables of registry objects, shared by the CLI and the demo."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from federation.schemas.registry import PlantRead


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
