"""Maintenance of the daily rollup (:class:`.models.MetricDaily`) inside the ingest transaction.

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

from hub.metrics.models import MetricDaily

_DAILY: Table = MetricDaily.__table__  # type: ignore[assignment]
_KEY = ("plant_id", "model_name", "kind", "metric", "day", "model_version")


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


def apply(session: Session, sums: Mapping[tuple[str, ...], list[float]]) -> None:
    """Add ``sums`` to the rollup in the caller's transaction (one upsert; flushes nothing else).

    Rows whose count falls to zero (every value they held was replaced) are removed.
    """
    if not sums:
        return
    values = [
        dict(zip(_KEY, key, strict=True)) | {"total": acc[0], "count": int(acc[1])}
        for key, acc in sums.items()
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_DAILY)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={
            "total": _DAILY.c.total + stmt.excluded.total,
            "count": _DAILY.c.count + stmt.excluded.count,
        },
    )
    connection = session.connection()
    # Sorted keys: concurrent batches of one plant are serialised anyway, but a stable
    # order keeps two plants' upserts from deadlocking on shared pages.
    connection.execute(stmt, sorted(values, key=lambda v: tuple(v[k] for k in _KEY)))
    emptied = sorted({key[0] for key, acc in sums.items() if acc[1] < 0})
    if emptied:
        session.execute(
            delete(MetricDaily).where(MetricDaily.plant_id.in_(emptied), MetricDaily.count <= 0),
            execution_options={"synchronize_session": False},
        )
