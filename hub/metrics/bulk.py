"""Bulk writes of new reports for the batch ingest: COPY on PostgreSQL, executemany elsewhere.

Called by :func:`.service.ingest_reports` inside its transaction, after it has validated,
de-duplicated and authorised the batch; this module only writes rows (reports, their
observations, the daily rollup) and never commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pydantic_core
from sqlalchemy import Table, text
from sqlalchemy.orm import Session

from federation.schemas.metrics_report import MetricsReport
from hub.metrics import rollup
from hub.metrics.models import MetricObservation, MetricsReportRecord

_RECORDS: Table = MetricsReportRecord.__table__  # type: ignore[assignment]
_OBSERVATIONS: Table = MetricObservation.__table__  # type: ignore[assignment]
_OBS_COLUMNS = (
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

#: One report to store: the model, its canonical document, its digest, and its numbers.
NewReport = tuple[MetricsReport, dict[str, Any], str, Sequence[Any]]


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _cached(fn: Callable[[dt.datetime], str]) -> Callable[[dt.datetime], str]:
    # the same few window bounds repeat over a report's numbers: format each once
    memo: dict[dt.datetime, str] = {}

    def get(moment: dt.datetime) -> str:
        out = memo.get(moment)
        if out is None:
            out = memo[moment] = fn(moment)
        return out

    return get


def _num(value: float | None) -> str:
    return "\\N" if value is None else repr(float(value))


def _copy_lines(
    plant_id: str,
    seq: int,
    report: MetricsReport,
    numbers: Sequence[Any],
    stamp: Callable[[dt.datetime], str],
) -> Iterator[str]:
    # Identifiers in a report match restrictive patterns (no tab, newline or backslash),
    # so they are written to COPY's text format as they are.
    head = f"{seq}\t{plant_id}\t{report.model_name}\t{report.model_version}\t"
    null = "\\N"
    for o in numbers:
        subject = o.subject if o.subject is not None else null
        yield (
            f"{head}{o.kind.value}\t{o.metric}\t{subject}\t"
            f"{o.chunk if o.chunk is not None else null}\t{stamp(o.start)}\t"
            f"{stamp(o.end)}\t{o.value!r}\t{_num(o.lower)}\t{_num(o.upper)}\n"
        )


def write_new_reports(
    *, session: Session, plant_id: str, items: Sequence[NewReport], actor: str, now: dt.datetime
) -> list[int]:
    """Insert new reports, their observations and rollup increments; return their seqs."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        seqs = list(
            connection.execute(
                text(
                    "SELECT nextval(pg_get_serial_sequence('metrics_reports', 'seq')) "
                    "FROM generate_series(1, :n)"
                ),
                {"n": len(items)},
            ).scalars()
        )
        raw: Any = connection.connection.driver_connection
        stamp = _cached(lambda m: _utc(m).isoformat())
        with raw.cursor() as cursor:
            with cursor.copy(
                f"COPY metrics_reports ({', '.join(_RECORD_COLUMNS)}) FROM STDIN"
            ) as copy:
                for seq, (report, document, digest, numbers) in zip(seqs, items, strict=True):
                    copy.write_row(
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
                            pydantic_core.to_json(document).decode(),
                            len(numbers),
                            now,
                            actor,
                        )
                    )
            with cursor.copy(
                f"COPY metric_observations ({', '.join(_OBS_COLUMNS)}) FROM STDIN"
            ) as copy:
                copy.write(
                    "".join(
                        line
                        for seq, (report, _, _, numbers) in zip(seqs, items, strict=True)
                        for line in _copy_lines(plant_id, seq, report, numbers, stamp)
                    )
                )
    else:
        seqs = list(
            connection.execute(
                _RECORDS.insert().returning(_RECORDS.c.seq, sort_by_parameter_order=True),
                [
                    {
                        "report_id": str(report.report_id),
                        "plant_id": plant_id,
                        "model_name": report.model_name,
                        "model_version": report.model_version,
                        "window_start": report.window_start,
                        "window_end": report.window_end,
                        "content_sha256": digest,
                        "revision": report.revision,
                        "document": document,
                        "observations": len(numbers),
                        "received_at": now,
                        "received_by": actor,
                    }
                    for report, document, digest, numbers in items
                ],
            ).scalars()
        )
        rows = [
            {
                "report_seq": seq,
                "plant_id": plant_id,
                "model_name": report.model_name,
                "model_version": report.model_version,
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
            for seq, (report, _, _, numbers) in zip(seqs, items, strict=True)
            for o in numbers
        ]
        if rows:
            connection.execute(_OBSERVATIONS.insert(), rows)
    sums: dict[tuple[str, ...], list[float]] = {}
    day = _cached(lambda m: rollup.day_of(m))
    for report, _, _, numbers in items:
        for o in numbers:
            if o.subject is not None:
                continue
            key = (
                plant_id,
                report.model_name,
                o.kind.value,
                o.metric,
                day(o.start),
                report.model_version,
            )
            acc = sums.get(key)
            if acc is None:
                sums[key] = [o.value, 1.0]
            else:
                acc[0] += o.value
                acc[1] += 1
    rollup.apply(session, sums)
    return seqs
