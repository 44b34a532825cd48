"""Bulk writes of new reports for the batch ingest: COPY on PostgreSQL, executemany elsewhere.

Called by :func:`.service.ingest_reports` inside its transaction, after it has validated,
de-duplicated and authorised the batch; this module only writes rows (reports, their
observations, the daily and monthly rollups, the latest value of each series) and never
commits. Report seqs and observation ids are allocated up front, so the newest value of
each series and the rollup sums are computed here from the numbers in hand and written
with one upsert each, instead of being read back from the rows just written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pydantic_core
from sqlalchemy import Table, and_, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from federation.schemas.metrics_report import MetricsReport
from hub.metrics import rollup
from hub.metrics.models import MetricLatest, MetricObservation, MetricsReportRecord

_RECORDS: Table = MetricsReportRecord.__table__  # type: ignore[assignment]
_OBSERVATIONS: Table = MetricObservation.__table__  # type: ignore[assignment]
_LATEST: Table = MetricLatest.__table__  # type: ignore[assignment]
_OBS_COLUMNS = (
    "id",
    "report_seq",
    "plant_id",
    "model_name",
    "model_version",
    "kind",
    "metric",
    "subject",
    "chunk",
    "window_start",
    "window_end",
    "value",
    "lower",
    "upper",
)
_RECORD_COLUMNS = (
    "seq",
    "report_id",
    "plant_id",
    "model_name",
    "model_version",
    "window_start",
    "window_end",
    "content_sha256",
    "revision",
    "document",
    "observations",
    "received_at",
    "received_by",
)
_LATEST_KEY = ("plant_id", "model_name", "kind", "metric", "subject")

#: One report to store: the model, its canonical document, its digest, and its numbers.
NewReport = tuple[MetricsReport, dict[str, Any], str, Sequence[Any]]


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class _Bounds:
    """Formats of the few window bounds a report's numbers share, computed once each.

    A report's numbers carry its window's or its chunks' own datetime objects, so they are
    looked up by identity (hashing an aware datetime costs more than formatting it once).
    Only valid while the report is alive: one instance per report.
    """

    __slots__ = ("memo", "postgres")

    def __init__(self, postgres: bool) -> None:
        self.memo: dict[int, tuple[str, str, dt.datetime]] = {}
        self.postgres = postgres

    def get(self, moment: dt.datetime) -> tuple[str, str, dt.datetime]:
        """Return (COPY text, rollup day, comparable instant) of a bound."""
        out = self.memo.get(id(moment))
        if out is None:
            utc = _utc(moment)
            # PostgreSQL compares instants; SQLite the stored (naive) text, as the row has it
            comparable = utc if self.postgres else moment.replace(tzinfo=None)
            out = self.memo[id(moment)] = (utc.isoformat(), rollup.day_of(moment), comparable)
        return out


def _num(value: float | None) -> str:
    return "\\N" if value is None else repr(float(value))


def allocate(connection: Connection, table: Table, column: str, n: int) -> list[int]:
    """Reserve ``n`` new values of an integer primary key, in ascending order.

    PostgreSQL draws them from the column's sequence (concurrent writers get disjoint
    ranges); SQLite continues after the largest stored value, which is safe because the
    ingest holds the database write lock from its first statement.
    """
    if n == 0:
        return []
    if connection.dialect.name == "postgresql":
        # one row holding an array: fetching n rows one by one cost more than the COPY
        values = connection.execute(
            text(
                "SELECT array_agg(v ORDER BY v) FROM (SELECT nextval("
                f"pg_get_serial_sequence('{table.name}', '{column}')) AS v "
                "FROM generate_series(1, :n)) AS drawn"
            ),
            {"n": n},
        ).scalar_one()
        return [int(v) for v in values]
    top = connection.execute(select(func.coalesce(func.max(table.c[column]), 0))).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + n))


def observation_row(plant_id: str, model_name: str, model_version: str, o: Any) -> dict[str, Any]:
    """Return one flattened number's observation columns (all but its id and report)."""
    return {
        "plant_id": plant_id,
        "model_name": model_name,
        "model_version": model_version,
        "kind": o.kind.value,
        "metric": o.metric,
        "subject": o.subject,
        "chunk": o.chunk,
        "window_start": o.start,
        "window_end": o.end,
        "value": o.value,
        "lower": o.lower,
        "upper": o.upper,
    }


def write_new_reports(
    *, session: Session, plant_id: str, items: Sequence[NewReport], actor: str, now: dt.datetime
) -> list[int]:
    """Insert new reports, their observations, rollup increments and latest values.

    Returns the reports' seqs, in the order of ``items``.
    """
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    seqs = allocate(connection, _RECORDS, "seq", len(items))
    ids = allocate(connection, _OBSERVATIONS, "id", sum(len(n) for _, _, _, n in items))
    # newest value per series: (model, kind, metric, subject or "") -> (window end, id)
    newest: dict[tuple[str, str, str, str], tuple[dt.datetime, int]] = {}
    sums: dict[tuple[str, ...], list[float]] = {}
    lines: list[str] = []
    rows: list[dict[str, Any]] = []
    null = "\\N"
    next_id = iter(ids)
    for seq, (report, _, _, numbers) in zip(seqs, items, strict=True):
        model, version = report.model_name, report.model_version
        head = f"\t{seq}\t{plant_id}\t{model}\t{version}\t"
        bounds = _Bounds(postgres).get
        for o in numbers:
            obs_id = next(next_id)
            kind = o.kind.value
            start_text, day, _ = bounds(o.start)
            end_text, _, end = bounds(o.end)
            series = (model, kind, o.metric, o.subject or "")
            seen = newest.get(series)
            if seen is None or (end, obs_id) > seen:
                newest[series] = (end, obs_id)
            if o.subject is None:
                key = (plant_id, model, kind, o.metric, day, version)
                acc = sums.get(key)
                if acc is None:
                    sums[key] = [o.value, 1.0]
                else:
                    acc[0] += o.value
                    acc[1] += 1
            if postgres:
                # Identifiers in a report match restrictive patterns (no tab, newline or
                # backslash), so they are written to COPY's text format as they are.
                lines.append(
                    f"{obs_id}{head}{kind}\t{o.metric}\t"
                    f"{o.subject if o.subject is not None else null}\t"
                    f"{o.chunk if o.chunk is not None else null}\t{start_text}\t"
                    f"{end_text}\t{o.value!r}\t{_num(o.lower)}\t{_num(o.upper)}\n"
                )
            else:
                rows.append(
                    {
                        "id": obs_id,
                        "report_seq": seq,
                        **observation_row(plant_id, model, version, o),
                    }
                )
    records = [
        (
            seq,
            str(report.report_id),
            plant_id,
            report.model_name,
            report.model_version,
            _utc(report.window_start),
            _utc(report.window_end),
            digest,
            report.revision,
            document,
            len(numbers),
            now,
            actor,
        )
        for seq, (report, document, digest, numbers) in zip(seqs, items, strict=True)
    ]
    if postgres:
        raw: Any = connection.connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy(
                f"COPY metrics_reports ({', '.join(_RECORD_COLUMNS)}) FROM STDIN"
            ) as copy:
                for record in records:
                    copy.write_row(
                        record[:9] + (pydantic_core.to_json(record[9]).decode(),) + record[10:]
                    )
            with cursor.copy(
                f"COPY metric_observations ({', '.join(_OBS_COLUMNS)}) FROM STDIN"
            ) as copy:
                copy.write("".join(lines))
    else:
        connection.execute(
            _RECORDS.insert(), [dict(zip(_RECORD_COLUMNS, r, strict=True)) for r in records]
        )
        if rows:
            connection.execute(_OBSERVATIONS.insert(), rows)
    rollup.apply(session, sums)
    upsert_latest(session=session, plant_id=plant_id, newest=newest)
    return seqs


def upsert_latest(
    *,
    session: Session,
    plant_id: str,
    newest: dict[tuple[str, str, str, str], tuple[dt.datetime, int]],
) -> None:
    """Point each series at ``newest`` unless the stored latest value is newer (one upsert).

    ``newest`` maps (model, kind, metric, subject or "") to (window end, observation id);
    newer means a later window end, ties going to the higher id (the later arrival).
    """
    if not newest:
        return
    values = [
        {
            "plant_id": plant_id,
            "model_name": model,
            "kind": kind,
            "metric": metric,
            "subject": subject,
            "window_end": end,
            "observation_id": obs_id,
        }
        for (model, kind, metric, subject), (end, obs_id) in sorted(newest.items())
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_LATEST)
    stored, new = _LATEST.c, stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=list(_LATEST_KEY),
        set_={"window_end": new.window_end, "observation_id": new.observation_id},
        where=or_(
            new.window_end > stored.window_end,
            and_(
                new.window_end == stored.window_end,
                new.observation_id > stored.observation_id,
            ),
        ),
    )
    session.connection().execute(stmt, values)
