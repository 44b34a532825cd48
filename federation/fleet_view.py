"""Rich tables of fleet operations (inventory, rollout progress, rollbacks), for CLI and demo."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from rich.console import Group
from rich.table import Table

from federation.schemas.rollouts import InventoryRow, RollbackRead, RolloutRead

_STAGE_STYLE = {
    "pending": "dim",
    "shadow": "cyan",
    "canary": "yellow",
    "promoting": "magenta",
    "champion": "green",
    "done": "green",
    "rolled_back": "red",
    "halted": "red",
    "skipped": "dim",
}


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"


def inventory_table(rows: Iterable[InventoryRow], title: str = "Model inventory") -> Table:
    """Render the inventory: one row per plant x model."""
    table = Table(title=title)
    columns = (
        "plant",
        "model",
        "version",
        "serving since",
        "previous",
        "trained",
        "data",
        "lineage",
        "validated",
        "estimated",
        "last report",
        "status",
        "rollout",
    )
    for column in columns:
        table.add_column(column)
    for r in rows:
        estimated = ", ".join(f"{k} {v:.3g}" for k, v in sorted(r.estimated.items())) or "-"
        report = _when(r.last_report_at) + (" [red]stale[/red]" if r.stale else "")
        rollout = "-" if r.rollout_id is None else f"#{r.rollout_id} {r.rollout_stage}"
        table.add_row(
            r.plant_id,
            r.model,
            r.version,
            _when(r.serving_since),
            r.previous_version or "-",
            _when(r.trained_at),
            r.training_data_fingerprint[:12] or "-",
            " > ".join(r.lineage),
            _when(r.last_validated_at),
            estimated,
            report,
            r.status.value
            + ("" if r.reported_version in (None, r.version) else f" ({r.reported_version})"),
            rollout,
        )
    return table


INVENTORY_CSV_COLUMNS = (
    "plant_id", "model", "version", "serving_since", "reported_version", "precision",
    "previous_version", "trained_at", "training_data_fingerprint", "parent_version", "lineage",
    "recipe_id", "last_validated_at", "last_validation", "estimated", "realized", "drift",
    "last_alert", "last_alert_at", "last_report_at", "node_version", "stale", "status",
    "rollout_id", "rollout_stage",
)  # fmt: skip


def inventory_csv(rows: Iterable[InventoryRow]) -> str:
    """Render the inventory as CSV (lineage ``a > b``, metrics as ``name=value;...``)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(INVENTORY_CSV_COLUMNS)
    for r in rows:
        data = r.model_dump(mode="json")
        data["lineage"] = " > ".join(r.lineage)
        for key in ("estimated", "realized", "drift"):
            data[key] = ";".join(f"{k}={v}" for k, v in sorted(data[key].items()))
        writer.writerow(["" if data[c] is None else data[c] for c in INVENTORY_CSV_COLUMNS])
    return out.getvalue()


def rollout_table(rollout: RolloutRead) -> Group:
    """Render a rollout: its waves with each plant's stage, and its latest steps."""
    head = Table(
        title=f"Rollout {rollout.id}: {rollout.model} {rollout.version} ({rollout.status.value})"
    )
    for column in ("wave", "plant", "stage", "since", "detail"):
        head.add_column(column)
    for p in rollout.plants:
        marker = ">" if p.wave == rollout.current_wave and rollout.status.active else " "
        style = _STAGE_STYLE.get(p.stage.value, "")
        head.add_row(
            f"{marker} {p.wave_name}",
            p.plant_id,
            f"[{style}]{p.stage.value}[/{style}]",
            _when(p.stage_started_at),
            p.detail,
        )
    parts: list[Table] = [head]
    if rollout.steps:
        steps = Table(title="Steps")
        for column in ("#", "at", "plant", "action", "reason"):
            steps.add_column(column)
        for s in rollout.steps[-15:]:
            steps.add_row(str(s.seq), f"{s.at:%H:%M:%S}", s.plant_id or "-", s.action, s.reason)
        parts.append(steps)
    return Group(*parts)


def rollouts_table(rollouts: Iterable[RolloutRead]) -> Table:
    """Render a list of rollouts."""
    table = Table(title="Rollouts")
    for column in ("id", "model", "version", "plan", "status", "wave", "plants", "started"):
        table.add_column(column)
    for r in rollouts:
        done = sum(p.stage.settled for p in r.plants)
        table.add_row(
            str(r.id),
            r.model,
            r.version,
            r.plan,
            r.status.value,
            f"{r.current_wave + 1}/{len(r.waves)} {r.waves[r.current_wave]}",
            f"{done}/{len(r.plants)}",
            _when(r.created_at),
        )
    return table


def rollbacks_table(rows: Iterable[RollbackRead]) -> Table:
    """Render the plants a rollback changed."""
    table = Table(title="Rollback")
    for column in ("plant", "model", "from", "to", "confirmed", "reason"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.plant_id,
            r.model,
            str(r.from_version_id or "-"),
            f"{r.to_version} (#{r.to_version_id})",
            r.confirmed_at.strftime("%H:%M:%S") if r.confirmed_at else "-",
            r.reason,
        )
    return table
