"""Maintenance of the daily and monthly rollups inside the ingest transaction.

Ingestion adds every feature-less observation's value to its plant x model x kind x metric x
day x version row with one upsert per batch; a revision that replaces a report subtracts
the values it replaces first. The dashboards read these rows instead of raw observations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.metrics.models import MetricDaily, MetricMonthly

_DAILY: Table = MetricDaily.__table__  # type: ignore[assignment]
_MONTHLY: Table = MetricMonthly.__table__  # type: ignore[assignment]
_KEY = ("plant_id", "model_name", "kind", "metric", "day", "model_version")
_MONTH_KEY = ("plant_id", "model_name", "kind", "metric", "month", "model_version")


def day_of(moment: dt.datetime) -> str:
    """Return the ``YYYY-MM-DD`` UTC day a moment falls on (naive means UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d")


def aggregate(
    rows: Iterable[Mapping[str, Any]] | Sequence[Any], *, sign: int = 1
) -> dict[tuple[str, ...], list[float]]:
    """Sum and count observation rows (dicts with the observation columns) per rollup key."""
    out: dict[tuple[str, ...], list[float]] = {}
    for row in rows:
        if row["subject"] is not None:
            continue
        key = (
            row["plant_id"],
            row["model_name"],
            row["kind"],
            row["metric"],
            day_of(row["window_start"]),
            row["model_version"],
        )
        acc = out.get(key)
        if acc is None:
            out[key] = [sign * row["value"], float(sign)]
        else:
            acc[0] += sign * row["value"]
            acc[1] += sign
    return out


def _upsert(
    session: Session,
    table: Table,
    key: tuple[str, ...],
    sums: Mapping[tuple[str, ...], list[float]],
) -> None:
    values = [
        dict(zip(key, k, strict=True)) | {"total": acc[0], "count": int(acc[1])}
        for k, acc in sums.items()
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={
            "total": table.c.total + stmt.excluded.total,
            "count": table.c.count + stmt.excluded.count,
        },
    )
    # Sorted keys: a stable order keeps two plants' upserts from deadlocking on shared pages.
    session.connection().execute(stmt, sorted(values, key=lambda v: tuple(v[k] for k in key)))


def apply(session: Session, sums: Mapping[tuple[str, ...], list[float]]) -> None:
    """Add ``sums`` (keyed by day) to the daily and monthly rollups in the caller's transaction.

    Rows whose count falls to zero (every value they held was replaced) are removed.
    """
    if not sums:
        return
    _upsert(session, _DAILY, _KEY, sums)
    months: dict[tuple[str, ...], list[float]] = {}
    for (plant, model, kind, metric, day, version), (total, count) in sums.items():
        acc = months.setdefault((plant, model, kind, metric, day[:7], version), [0.0, 0.0])
        acc[0] += total
        acc[1] += count
    _upsert(session, _MONTHLY, _MONTH_KEY, months)
    emptied = sorted({key[0] for key, acc in sums.items() if acc[1] < 0})
    if emptied:
        for table in (_DAILY, _MONTHLY):
            session.execute(
                delete(table).where(table.c.plant_id.in_(emptied), table.c.count <= 0),
                execution_options={"synchronize_session": False},
            )
