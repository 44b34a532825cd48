"""Ingestion and queries of plant metrics reports.

A report is stored once per ``(plant_id, report_id)``: re-sending the same document is a no-op that
returns the first receipt, the same id with other content is a conflict. Windows may arrive
late and in any order; observations are ordered by their window, not by arrival.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Select, Table, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from federation.errors import Conflict, InvalidInput, NotFound
from federation.schemas.metrics_registry import (
    DailyPoint,
    MetricKind,
    MetricObservationRead,
    MetricsReportBatchReceipt,
    MetricsReportReceipt,
    MetricSummary,
    MonthlyTotal,
)
from federation.schemas.metrics_report import MetricsReport
from hub.alerts import service as alerts_service
from hub.db import begin_write, utcnow
from hub.idempotency import service as idempotency_service
from hub.idempotency.service import IdempotencyKey
from hub.metrics import bulk, rollup
from hub.metrics.models import (
    MetricDaily,
    MetricLatest,
    MetricMonthly,
    MetricObservation,
    MetricsReportRecord,
)
from hub.pagination import decode_token, encode_token
from hub.registry import service as registry_service
from hub.registry.models import Plant

SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])

_OBSERVATIONS: Table = MetricObservation.__table__  # type: ignore[assignment]

#: Most series :func:`summarize` returns in one answer.
SUMMARY_LIMIT = 5000

_SCORES = ("js", "ks", "wasserstein", "psi")
_ALERT_COUNTS = ("raised", "cleared", "open", "true_alarms", "false_alarms")
_INTEGRITY_MAPS = ("null_values", "out_of_range", "contract_violations", "stuck_sensors")
_IMPACT_COUNTS = ("units", "caught", "missed", "false_alarms")


class Obs(NamedTuple):
    """One flattened number of a report."""

    kind: MetricKind
    metric: str
    value: float
    start: dt.datetime
    end: dt.datetime
    subject: str | None = None
    chunk: int | None = None
    lower: float | None = None
    upper: float | None = None


def _canonical(report: MetricsReport) -> tuple[dict[str, Any], str]:
    document = report.model_dump(mode="json")
    hashed = document
    # Reports from before an optional field (impact, open_alert_keys) keep the digest they
    # were stored with.
    optional = [k for k in ("impact", "open_alert_keys") if document.get(k) is None]
    if optional:
        hashed = {k: v for k, v in document.items() if k not in optional}
    raw = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
    return document, hashlib.sha256(raw.encode()).hexdigest()


def flatten(report: MetricsReport) -> Iterator[Obs]:
    """Yield every number of a report as one observation (see :mod:`.metrics_registry`)."""
    est, real, drift = MetricKind.ESTIMATED, MetricKind.REALIZED, MetricKind.DRIFT
    w0, w1 = report.window_start, report.window_end
    for c in report.chunks:
        for m in c.metrics:
            if m.estimated is not None:
                yield Obs(
                    est, m.metric, m.estimated, c.start, c.end, None, c.chunk, m.lower, m.upper
                )
            if m.realized is not None:
                yield Obs(real, m.metric, m.realized, c.start, c.end, None, c.chunk)
        if c.multivariate_drift is not None:
            yield Obs(drift, "multivariate", c.multivariate_drift, c.start, c.end, None, c.chunk)
    scored = [(f.feature, f.scores) for f in report.drift]
    if report.prediction_drift is not None:
        scored.append(("prediction", report.prediction_drift))
    for subject, scores in scored:
        for score in _SCORES:
            if (value := getattr(scores, score)) is not None:
                yield Obs(drift, score, value, w0, w1, subject)
    for f in report.drift:
        yield Obs(drift, "drifted_chunks", float(f.drifted_chunks), w0, w1, f.feature)
    integrity = report.integrity
    for name in _INTEGRITY_MAPS:
        for subject, count in getattr(integrity, name).items():
            yield Obs(MetricKind.INTEGRITY, name, float(count), w0, w1, subject)
    totals = {
        "missing_rows": integrity.missing_rows,
        "late_rows": integrity.late_rows,
        "stuck_units": len(integrity.stuck_units),
        "n_rows": report.n_rows,
        "suppressed_chunks": report.suppressed_chunks,
    }
    for name, count in totals.items():
        yield Obs(MetricKind.INTEGRITY, name, float(count), w0, w1)
    if report.latency_ms is not None:
        for name in ("p50", "p95", "p99"):
            yield Obs(MetricKind.LATENCY, name, getattr(report.latency_ms, name), w0, w1)
    for name in _ALERT_COUNTS:
        yield Obs(MetricKind.ALERTS, name, float(getattr(report.alerts, name)), w0, w1)
    for alert_kind, count in report.alerts.by_kind.items():
        yield Obs(MetricKind.ALERTS, "raised", float(count), w0, w1, alert_kind.value)
    if report.impact is not None:
        for name in _IMPACT_COUNTS:
            yield Obs(MetricKind.IMPACT, name, float(getattr(report.impact, name)), w0, w1)


def _receipt(row: MetricsReportRecord, *, duplicate: bool) -> MetricsReportReceipt:
    return MetricsReportReceipt(
        report_id=row.report_id,
        plant_id=row.plant_id,
        model_name=row.model_name,
        model_version=row.model_version,
        window_start=row.window_start,
        window_end=row.window_end,
        revision=row.revision,
        observations=row.observations,
        received_at=row.received_at,
        duplicate=duplicate,
    )


def _get_report(session: Session, plant_id: str, report_id: str) -> MetricsReportRecord | None:
    """Return the plant's report with this id (unique per plant, never across plants)."""
    return session.scalars(
        select(MetricsReportRecord).where(
            MetricsReportRecord.plant_id == plant_id, MetricsReportRecord.report_id == report_id
        )
    ).first()


def _lock_plant(session: Session, plant_id: str) -> None:
    """Serialise a plant's ingests, so a concurrent older window never wins the latest value.

    PostgreSQL: ``FOR NO KEY UPDATE`` on the plant row (other tables' foreign-key checks
    against the plant are not blocked). SQLite: a no-op write as the transaction's first
    statement takes the database write lock, waiting up to the busy timeout; reading first
    would make the later write fail at once if another writer committed in between.
    """
    if session.get_bind().dialect.name == "sqlite":
        begin_write(session)
    else:
        session.execute(
            select(Plant.id).where(Plant.id == plant_id).with_for_update(key_share=True)
        )


def ingest_report(
    *,
    session: Session,
    plant_id: str,
    report: MetricsReport,
    actor: str,
    idem: IdempotencyKey | None = None,
) -> MetricsReportReceipt:
    """Store a plant's report and its observations, or return the receipt of the first copy.

    Returns
    -------
    MetricsReportReceipt
        ``duplicate`` is True when the report id was already stored with the same content
        (except for a replay of the request that stored it, under the same Idempotency-Key).

    Raises
    ------
    NotFound
        When the plant is not enrolled.
    InvalidInput
        When the report names another plant than the path; ``idempotency_mismatch`` when the
        Idempotency-Key was used for another request.
    Conflict
        When the report id was already stored with different content at the same revision
        (a lower revision than the stored one is answered as a duplicate and changes nothing;
        a higher one replaces the stored report and its observations).
    """
    _lock_plant(session, plant_id)
    registry_service.get_plant_or_raise(session=session, plant_id=plant_id)
    if report.plant_id != plant_id:
        raise InvalidInput(
            f"The report is for plant '{report.plant_id}' but was posted to plant "
            f"'{plant_id}'; post it to /plants/{report.plant_id}/metrics-reports.",
            errors=[
                {
                    "field": "body.plant_id",
                    "message": f"must be '{plant_id}', the plant in the path",
                    "type": "value_error",
                }
            ],
        )
    document, digest = _canonical(report)
    report_id = str(report.report_id)
    # The report id is the natural key. The same content is a re-send; other content is
    # accepted only as a higher revision (the plant re-sends a window when labels arrive
    # after it was sent), else it is a conflict (409) even when it reuses the first
    # delivery's Idempotency-Key; the key only decides replay (201) vs re-send (200), and
    # is refused for a different report id.
    existing = _get_report(session, plant_id, report_id)
    if existing is not None and existing.content_sha256 != digest:
        if report.revision < existing.revision:
            # an older revision delivered after a newer one: the stored revision stands
            return _receipt(existing, duplicate=True)
        if report.revision == existing.revision:
            raise Conflict(
                f"report '{report_id}' revision {report.revision} was already received with "
                "different content; a report id names one window's report, and a changed "
                "window is re-sent with a higher revision.",
            )
    scope = "metrics_report"
    req_hash = idempotency_service.request_hash(scope, {"plant_id": plant_id, "sha256": digest})
    ref = idempotency_service.find_replay(
        session=session, idem=idem, scope=scope, req_hash=req_hash
    )
    if existing is not None and existing.content_sha256 == digest:
        return _receipt(existing, duplicate=ref != report_id)
    if existing is not None:
        _replace(session, existing, report, document=document, digest=digest, actor=actor)
        idempotency_service.remember(
            session=session, idem=idem, scope=scope, req_hash=req_hash, resource_ref=report_id
        )
        session.commit()
        return _receipt(existing, duplicate=False)
    rows = _observation_rows(plant_id, report)
    record = MetricsReportRecord(
        report_id=report_id,
        plant_id=plant_id,
        model_name=report.model_name,
        model_version=report.model_version,
        window_start=report.window_start,
        window_end=report.window_end,
        content_sha256=digest,
        revision=report.revision,
        document=document,
        observations=len(rows),
        received_by=actor,
    )
    try:
        session.add(record)
        session.flush()
        # One Core executemany without RETURNING: ORM objects (or ORM bulk insert, which
        # splits the batch by which values are None) cost several times more per row.
        for row in rows:
            row["report_seq"] = record.seq
        if rows:
            session.connection().execute(_OBSERVATIONS.insert(), rows)
        rollup.apply(session, rollup.aggregate(rows))
        _advance_latest(session, plant_id=plant_id, model_name=report.model_name, seqs=[record.seq])
        alerts_service.apply_report(session=session, plant_id=plant_id, report=report)
        idempotency_service.remember(
            session=session, idem=idem, scope=scope, req_hash=req_hash, resource_ref=report_id
        )
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        # Another delivery of the same report won the race: answer as for a re-send.
        winner = _get_report(session, plant_id, report_id)
        if winner is not None and winner.content_sha256 == digest:
            return _receipt(winner, duplicate=True)
        raise Conflict(
            f"report '{report_id}' was received concurrently with other content; resend it",
            diagnostic=str(exc.orig),
        ) from exc
    return _receipt(record, duplicate=False)


def _observation_rows(plant_id: str, report: MetricsReport) -> list[dict[str, Any]]:
    return [
        bulk.observation_row(plant_id, report.model_name, report.model_version, o)
        for o in flatten(report)
    ]


def _replace(
    session: Session,
    record: MetricsReportRecord,
    report: MetricsReport,
    *,
    document: dict[str, Any],
    digest: str,
    actor: str,
) -> None:
    """Swap a stored report's observations for those of a higher revision of it.

    Series whose latest value was one of the old observations point at the new revision's
    value of the same window; a series the new revision no longer holds falls back to its
    newest value in other reports.
    """
    obs, latest = MetricObservation, MetricLatest
    old_ids = select(obs.id).where(obs.report_seq == record.seq)
    lost = session.execute(
        select(latest.kind, latest.metric, latest.subject).where(
            latest.plant_id == record.plant_id,
            latest.model_name == record.model_name,
            latest.observation_id.in_(old_ids),
        )
    ).all()
    session.execute(
        delete(latest).where(latest.observation_id.in_(old_ids)),
        execution_options={"synchronize_session": False},
    )
    replaced = session.execute(
        select(
            obs.plant_id,
            obs.model_name,
            obs.model_version,
            obs.kind,
            obs.metric,
            obs.subject,
            obs.window_start,
            obs.value,
        ).where(obs.report_seq == record.seq, obs.subject.is_(None))
    ).mappings()
    rollup.apply(session, rollup.aggregate(list(replaced), sign=-1))
    session.execute(
        delete(obs).where(obs.report_seq == record.seq),
        execution_options={"synchronize_session": False},
    )
    rows = _observation_rows(record.plant_id, report)
    for row in rows:
        row["report_seq"] = record.seq
    if rows:
        session.connection().execute(_OBSERVATIONS.insert(), rows)
    rollup.apply(session, rollup.aggregate(rows))
    record.model_version = report.model_version
    record.content_sha256 = digest
    record.revision = report.revision
    record.document = document
    record.observations = len(rows)
    record.received_at = utcnow()
    record.received_by = actor
    session.flush()
    _advance_latest(
        session, plant_id=record.plant_id, model_name=record.model_name, seqs=[record.seq]
    )
    for kind, metric, subject in lost:
        if session.get(latest, (record.plant_id, record.model_name, kind, metric, subject)):
            continue  # the new revision holds the series
        newest = session.execute(
            select(obs.id, obs.window_end)
            .where(
                obs.plant_id == record.plant_id,
                obs.model_name == record.model_name,
                obs.kind == kind,
                obs.metric == metric,
                obs.subject.is_(None) if subject == "" else obs.subject == subject,
            )
            .order_by(obs.window_end.desc(), obs.id.desc())
            .limit(1)
        ).first()
        if newest is not None:
            series = (kind, metric, subject)
            session.add(
                _latest(record.plant_id, record.model_name, series, newest.window_end, newest.id)
            )
    session.flush()


def _latest(
    plant_id: str, model_name: str, series: tuple[str, str, str], end: dt.datetime, obs_id: int
) -> MetricLatest:
    kind, metric, subject = series
    return MetricLatest(
        plant_id=plant_id,
        model_name=model_name,
        kind=kind,
        metric=metric,
        subject=subject,
        window_end=end,
        observation_id=obs_id,
    )


def _advance_latest(session: Session, *, plant_id: str, model_name: str, seqs: list[int]) -> None:
    """Point every series of new reports at its newest value, unless a newer one is stored.

    The database picks each series' newest value among the reports (one window-function
    query), so a batch costs one round trip whatever its size.
    """
    obs = MetricObservation
    rank = (
        func.row_number()
        .over(
            partition_by=(obs.kind, obs.metric, func.coalesce(obs.subject, "")),
            order_by=(obs.window_end.desc(), obs.id.desc()),
        )
        .label("rank")
    )
    ranked = (
        select(obs.kind, obs.metric, obs.subject, obs.window_end, obs.id, rank)
        .where(obs.report_seq.in_(seqs), obs.model_name == model_name)
        .subquery()
    )
    newest = {
        (kind, metric, subject or ""): (end, obs_id)
        for kind, metric, subject, end, obs_id in session.execute(
            select(
                ranked.c.kind, ranked.c.metric, ranked.c.subject, ranked.c.window_end, ranked.c.id
            ).where(ranked.c.rank == 1)
        )
    }
    stored = {
        (r.kind, r.metric, r.subject): r
        for r in session.scalars(
            select(MetricLatest).where(
                MetricLatest.plant_id == plant_id, MetricLatest.model_name == model_name
            )
        )
    }
    for series, (end, obs_id) in newest.items():
        row = stored.get(series)
        if row is None:
            session.add(_latest(plant_id, model_name, series, end, obs_id))
        elif (end, obs_id) > (row.window_end, row.observation_id):
            row.window_end, row.observation_id = end, obs_id
    session.flush()


def get_report_document(*, session: Session, plant_id: str, report_id: str) -> dict[str, Any]:
    """Return a stored report as the plant sent it.

    Raises
    ------
    NotFound
        When the plant or the report (for that plant) does not exist.
    """
    registry_service.get_plant_or_raise(session=session, plant_id=plant_id)
    row = _get_report(session, plant_id, report_id)
    if row is None:
        raise NotFound(f"plant '{plant_id}' has no metrics report '{report_id}'.")
    return dict(row.document)


def _filtered(stmt: SelectT, filters: dict[str, Any], *, latest: bool = False) -> SelectT:
    """Apply the list filters; ``latest`` filters the series columns of :class:`MetricLatest`.

    The summary must filter the small latest table (the planner then probes observations
    by id) rather than the observations themselves.
    """
    obs = MetricObservation
    series = MetricLatest if latest else obs
    columns = {
        "plant_id": series.plant_id,
        "model_name": series.model_name,
        "model_version": obs.model_version,
        "metric": series.metric,
        "kind": series.kind,
        "subject": series.subject,
    }
    for name, column in columns.items():
        if filters.get(name) is not None:
            stmt = stmt.where(column == filters[name])
    if filters.get("start") is not None:
        stmt = stmt.where(obs.window_start >= filters["start"])
    if filters.get("end") is not None:
        stmt = stmt.where(obs.window_start < filters["end"])
    return stmt


def _to_read(obs: MetricObservation, report_id: str) -> MetricObservationRead:
    return MetricObservationRead(
        id=obs.id,
        report_id=uuid.UUID(report_id),
        plant_id=obs.plant_id,
        model_name=obs.model_name,
        model_version=obs.model_version,
        kind=MetricKind(obs.kind),
        metric=obs.metric,
        subject=obs.subject,
        chunk=obs.chunk,
        window_start=obs.window_start,
        window_end=obs.window_end,
        value=obs.value,
        lower=obs.lower,
        upper=obs.upper,
    )


def list_observations(
    *, session: Session, filters: dict[str, Any], page_size: int, page_token: str | None
) -> tuple[list[MetricObservationRead], str | None]:
    """One page of observations ordered by ``(window_start, id)``.

    ``filters`` keys: ``plant_id``, ``model_name``, ``model_version``, ``metric``, ``kind``,
    ``subject`` (equality) and ``start``/``end`` (window start in ``[start, end)``); None
    means no filter. The keyset order makes late and out-of-order reports appear where
    their window belongs, and pages stay stable while reports arrive.

    Raises
    ------
    InvalidInput
        When ``start`` is not before ``end`` or the page token is not valid for the filters.
    """
    start, end = filters.get("start"), filters.get("end")
    if start is not None and end is not None and end <= start:
        raise InvalidInput("'to' must be after 'from'.")
    fingerprint = {
        k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in filters.items()
    }
    after = decode_token(page_token, fingerprint)
    obs = MetricObservation
    stmt = _filtered(
        select(obs, MetricsReportRecord.report_id).join(
            MetricsReportRecord, MetricsReportRecord.seq == obs.report_seq
        ),
        filters,
    )
    if after is not None:
        try:
            after_start, after_id = dt.datetime.fromisoformat(after[0]), int(after[1])
        except (TypeError, ValueError, IndexError) as exc:
            raise InvalidInput("page_token is malformed; start again without it.") from exc
        stmt = stmt.where(
            or_(
                obs.window_start > after_start,
                and_(obs.window_start == after_start, obs.id > after_id),
            )
        )
    rows = session.execute(stmt.order_by(obs.window_start, obs.id).limit(page_size + 1)).all()
    items = [_to_read(o, rid) for o, rid in rows[:page_size]]
    token = None
    if len(rows) > page_size:
        last = items[-1]
        token = encode_token([last.window_start.isoformat(), last.id], fingerprint)
    return items, token


def summarize(*, session: Session, filters: dict[str, Any]) -> MetricSummary:
    """Return the latest observation (by window end, then arrival) of every series.

    A series is one plant x model x kind x metric x subject: what an executive dashboard
    sets side by side. The equality filters of :func:`list_observations` apply to the latest
    values (so ``model_version`` keeps the series whose latest value came from it); there is
    no time range, as a series' latest value is one row kept up to date at ingest.
    """
    obs = MetricObservation
    stmt = _filtered(
        select(obs, MetricsReportRecord.report_id)
        .join(MetricLatest, MetricLatest.observation_id == obs.id)
        .join(MetricsReportRecord, MetricsReportRecord.seq == obs.report_seq),
        {k: v for k, v in filters.items() if k not in ("start", "end")},
        latest=True,
    )
    stmt = stmt.order_by(
        MetricLatest.plant_id,
        MetricLatest.model_name,
        MetricLatest.kind,
        MetricLatest.metric,
        MetricLatest.subject,
    ).limit(SUMMARY_LIMIT + 1)
    rows = session.execute(stmt).all()
    return MetricSummary(
        items=[_to_read(o, rid) for o, rid in rows[:SUMMARY_LIMIT]],
        truncated=len(rows) > SUMMARY_LIMIT,
    )


def _at(index: int, field: str, message: str) -> dict[str, Any]:
    """One ``errors`` entry about a field of the batch's report ``index``."""
    return {"field": f"body.reports.{index}.{field}", "message": message, "type": "value_error"}


def ingest_reports(
    *,
    session: Session,
    plant_id: str,
    reports: list[MetricsReport],
    actor: str,
    max_batch: int,
    idem: IdempotencyKey | None = None,
) -> MetricsReportBatchReceipt:
    """Store a batch of one plant's reports in one transaction (all or nothing).

    Each report follows the rules of :func:`ingest_report`: a stored id with the same content
    (or a lower revision) is a duplicate, a higher revision replaces the stored report, the
    same revision with other content is a conflict that refuses the whole batch. New reports
    are written with one insert per table, so a batch costs a few round trips.

    Raises
    ------
    NotFound
        When the plant is not enrolled.
    InvalidInput
        When the batch is larger than ``max_batch``, repeats a report id, or holds a report
        of another plant; ``idempotency_mismatch`` when the Idempotency-Key was used for
        another request.
    Conflict
        When a report id was stored by the plant with different content at the same
        revision. Report ids are unique per plant: another plant's report with the same id
        is not a re-send.
    """
    if len(reports) > max_batch:
        raise InvalidInput(
            f"The batch holds {len(reports)} reports; a batch holds at most {max_batch}, split it."
        )
    ids = [str(r.report_id) for r in reports]
    first_at: dict[str, int] = {}
    for index, rid in enumerate(ids):
        if rid in first_at:
            raise InvalidInput(
                f"Reports {first_at[rid]} and {index} of the batch have the same id '{rid}'; "
                "send each window once.",
                errors=[_at(index, "report_id", "repeats an earlier report of the batch")],
            )
        first_at[rid] = index
    foreign = [i for i, r in enumerate(reports) if r.plant_id != plant_id]
    if foreign:
        others = sorted({reports[i].plant_id for i in foreign})
        raise InvalidInput(
            f"Report(s) {foreign[:10]} of the batch are for plant(s) {others} but were posted "
            f"to plant '{plant_id}'; post each plant's reports to its own path.",
            errors=[_at(i, "plant_id", f"must be '{plant_id}'") for i in foreign[:50]],
        )
    _lock_plant(session, plant_id)
    registry_service.get_plant_or_raise(session=session, plant_id=plant_id)
    canon = [_canonical(r) for r in reports]
    scope = "metrics_report_batch"
    req_hash = idempotency_service.request_hash(
        scope, {"plant_id": plant_id, "sha256": [digest for _, digest in canon]}
    )
    replay = (
        idempotency_service.find_replay(session=session, idem=idem, scope=scope, req_hash=req_hash)
        is not None
    )
    records = MetricsReportRecord
    # Report ids are unique per plant: only this plant's reports can be re-sends (the
    # lookup walks the (plant_id, report_id) unique index).
    existing = {
        row.report_id: row
        for row in session.scalars(
            select(records).where(records.plant_id == plant_id, records.report_id.in_(ids))
        )
    }
    receipts: dict[str, MetricsReportReceipt] = {}
    fresh: list[tuple[MetricsReport, dict[str, Any], str]] = []
    replaced: list[MetricsReportRecord] = []
    for index, (report, (document, digest), rid) in enumerate(
        zip(reports, canon, ids, strict=True)
    ):
        old = existing.get(rid)
        if old is None:
            fresh.append((report, document, digest))
            continue
        if old.content_sha256 == digest or report.revision < old.revision:
            receipts[rid] = _receipt(old, duplicate=not replay)
            continue
        if report.revision == old.revision:
            # nothing of the batch is kept: the session is never committed
            raise Conflict(
                f"report {index} of the batch ('{rid}') revision {report.revision} was already "
                "received with different content; a changed window is re-sent with a higher "
                "revision. Nothing of this batch was stored.",
            )
        _replace(session, old, report, document=document, digest=digest, actor=actor)
        replaced.append(old)
    now = utcnow()
    if fresh:
        numbers = [list(flatten(report)) for report, _, _ in fresh]
        seqs = bulk.write_new_reports(
            session=session,
            plant_id=plant_id,
            items=[(r, doc, digest, n) for (r, doc, digest), n in zip(fresh, numbers, strict=True)],
            actor=actor,
            now=now,
        )
        del seqs  # the latest values were advanced by the bulk write
        for report, _, _ in sorted(fresh, key=lambda item: item[0].window_end):
            alerts_service.apply_report(session=session, plant_id=plant_id, report=report)
        for rows, (report, _, _) in zip(numbers, fresh, strict=True):
            receipts[str(report.report_id)] = MetricsReportReceipt.model_construct(
                report_id=report.report_id,
                plant_id=plant_id,
                model_name=report.model_name,
                model_version=report.model_version,
                window_start=report.window_start,
                window_end=report.window_end,
                revision=report.revision,
                observations=len(rows),
                received_at=now,
                duplicate=False,
            )
    for record in replaced:
        receipts[record.report_id] = _receipt(record, duplicate=False)
    if not replay:
        # a replay answers as the first delivery did (nothing stored twice, duplicate False)
        idempotency_service.remember(
            session=session,
            idem=idem,
            scope=scope,
            req_hash=req_hash,
            resource_ref=f"batch:{len(ids)}:{ids[0]}",
        )
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(
            "a report of this batch was received concurrently; resend the batch",
            diagnostic=str(exc.orig),
        ) from exc
    ordered = [receipts[rid] for rid in ids]
    duplicates = sum(r.duplicate for r in ordered)
    return MetricsReportBatchReceipt(
        accepted=len(ordered) - duplicates, duplicates=duplicates, receipts=ordered
    )


# --- aggregate reads of the daily rollup and the latest values (dashboards and API) -----

#: Longest range a daily or monthly query covers (a year and a month of history).
MAX_RANGE_DAYS = 400


def check_range(start: dt.date, end: dt.date) -> None:
    """Refuse an inverted or too long day range ``[start, end]``.

    Raises
    ------
    InvalidInput
        When ``end`` is before ``start`` or the range exceeds :data:`MAX_RANGE_DAYS`.
    """
    if end < start:
        raise InvalidInput(f"The range ends ({end}) before it starts ({start}); swap them.")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput(
            f"The range {start} to {end} covers {(end - start).days + 1} days; the hub "
            f"keeps and charts at most {MAX_RANGE_DAYS} days at once."
        )


class DailyMean(NamedTuple):
    """A series' mean over one UTC day (the light form of :class:`DailyPoint`)."""

    plant_id: str
    kind: str
    day: dt.date
    mean: float
    n: int  # values averaged (``count`` would shadow tuple.count)


def daily_means(
    *,
    session: Session,
    plant_ids: list[str] | None,
    model_name: str,
    metric: str,
    kinds: tuple[MetricKind, ...],
    start: dt.date,
    end: dt.date,
) -> list[DailyMean]:
    """Return daily means (over every version served that day) of one model's metric per plant.

    Reads the rollup only: one grouped query whatever the number of reports. Ordered by
    plant, kind and day. The pages call this; the API wraps it in :func:`daily_series`.
    """
    check_range(start, end)
    daily = MetricDaily
    stmt = (
        select(
            daily.plant_id,
            daily.kind,
            daily.day,
            func.sum(daily.total).label("total"),
            func.sum(daily.count).label("count"),
        )
        .where(
            daily.model_name == model_name,
            daily.metric == metric,
            daily.kind.in_([k.value for k in kinds]),
            daily.day >= start.isoformat(),
            daily.day <= end.isoformat(),
        )
        .group_by(daily.plant_id, daily.kind, daily.day)
    )
    if plant_ids is not None:
        stmt = stmt.where(daily.plant_id.in_(plant_ids))
    # Ordered here, not by the database (its locale-aware text sort of a year of ten plants'
    # days cost more than the rest of the query), on plain tuples (Row comparisons are slow).
    rows = sorted((p, k, d, t, c) for p, k, d, t, c in session.execute(stmt))
    day_of = {d: dt.date.fromisoformat(d) for d in {r[2] for r in rows}}
    return [
        DailyMean(plant, kind, day_of[day], float(total) / int(count), int(count))
        for plant, kind, day, total, count in rows
        if count
    ]


def daily_series(
    *,
    session: Session,
    plant_ids: list[str] | None,
    model_name: str,
    metric: str,
    kinds: tuple[MetricKind, ...],
    start: dt.date,
    end: dt.date,
) -> list[DailyPoint]:
    """Return :func:`daily_means` as wire points (``GET /api/v1/metrics/daily``)."""
    means = daily_means(
        session=session,
        plant_ids=plant_ids,
        model_name=model_name,
        metric=metric,
        kinds=kinds,
        start=start,
        end=end,
    )
    # Built without re-validation: every field comes typed from the rollup's columns.
    return [
        DailyPoint.model_construct(
            plant_id=m.plant_id,
            model_name=model_name,
            kind=MetricKind(m.kind),
            metric=metric,
            day=m.day,
            mean=m.mean,
            count=m.n,
        )
        for m in means
    ]


def monthly_totals(
    *,
    session: Session,
    plant_ids: list[str] | None,
    kind: MetricKind,
    metrics: tuple[str, ...],
    start: dt.date,
    end: dt.date,
    model_name: str | None = None,
) -> list[MonthlyTotal]:
    """Return sums per plant, model, month and metric of a kind's series (e.g. impact counts).

    Reads the monthly rollup for the months ``start`` to ``end`` fall in (whole months).
    """
    check_range(start, end)
    monthly = MetricMonthly
    stmt = (
        select(
            monthly.plant_id,
            monthly.model_name,
            monthly.month,
            monthly.metric,
            func.sum(monthly.total),
        )
        .where(
            monthly.kind == kind.value,
            monthly.metric.in_(metrics),
            monthly.month >= start.isoformat()[:7],
            monthly.month <= end.isoformat()[:7],
        )
        .group_by(monthly.plant_id, monthly.model_name, monthly.month, monthly.metric)
        .order_by(monthly.plant_id, monthly.model_name, monthly.month, monthly.metric)
    )
    if plant_ids is not None:
        stmt = stmt.where(monthly.plant_id.in_(plant_ids))
    if model_name is not None:
        stmt = stmt.where(monthly.model_name == model_name)
    return [
        MonthlyTotal(
            plant_id=plant, model_name=model, kind=kind, metric=metric, month=m, total=float(t)
        )
        for plant, model, m, metric, t in session.execute(stmt)
    ]


class ServedVersion(NamedTuple):
    """A model version a plant reported on, and the days it did."""

    model_name: str
    model_version: str
    first_day: dt.date
    last_day: dt.date
    reports: int


def versions_served(*, session: Session, plant_id: str) -> list[ServedVersion]:
    """Return which versions a plant's reports came from, and when (first and last day)."""
    daily = MetricDaily
    stmt = (
        select(
            daily.model_name,
            daily.model_version,
            func.min(daily.day),
            func.max(daily.day),
            func.sum(daily.count),
        )
        .where(
            daily.plant_id == plant_id,
            daily.kind == MetricKind.INTEGRITY.value,
            daily.metric == "n_rows",
        )
        .group_by(daily.model_name, daily.model_version)
        .order_by(daily.model_name, func.min(daily.day))
    )
    return [
        ServedVersion(m, v, dt.date.fromisoformat(a), dt.date.fromisoformat(b), int(n))
        for m, v, a, b, n in session.execute(stmt)
    ]


class LatestValue(NamedTuple):
    """The newest value of one feature-less series."""

    plant_id: str
    model_name: str
    model_version: str
    kind: str
    metric: str
    value: float
    window_end: dt.datetime


def latest_values(
    *, session: Session, plant_ids: list[str] | None, kinds: tuple[MetricKind, ...]
) -> list[LatestValue]:
    """Return the newest value of every feature-less series of ``kinds`` (from the latest table)."""
    latest, obs = MetricLatest, MetricObservation
    stmt = (
        select(
            latest.plant_id,
            latest.model_name,
            obs.model_version,
            latest.kind,
            latest.metric,
            obs.value,
            latest.window_end,
        )
        .join(obs, obs.id == latest.observation_id)
        .where(latest.subject == "", latest.kind.in_([k.value for k in kinds]))
        .order_by(latest.plant_id, latest.model_name, latest.kind, latest.metric)
    )
    if plant_ids is not None:
        stmt = stmt.where(latest.plant_id.in_(plant_ids))
    return [LatestValue(*row) for row in session.execute(stmt)]


def max_drift_scores(
    *, session: Session, plant_ids: list[str] | None
) -> dict[tuple[str, str], tuple[float, float]]:
    """Return per plant x model the largest latest ``drifted_chunks`` and ``psi`` of a feature."""
    latest, obs = MetricLatest, MetricObservation
    stmt = (
        select(latest.plant_id, latest.model_name, latest.metric, func.max(obs.value))
        .join(obs, obs.id == latest.observation_id)
        .where(
            latest.kind == MetricKind.DRIFT.value,
            latest.subject != "",
            latest.subject != "prediction",
            latest.metric.in_(("drifted_chunks", "psi")),
        )
        .group_by(latest.plant_id, latest.model_name, latest.metric)
    )
    if plant_ids is not None:
        stmt = stmt.where(latest.plant_id.in_(plant_ids))
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for plant, model, metric, value in session.execute(stmt):
        chunks, psi = out.get((plant, model), (0.0, 0.0))
        out[(plant, model)] = (
            (float(value), psi) if metric == "drifted_chunks" else (chunks, float(value))
        )
    return out


def recent_reports(
    *, session: Session, plant_id: str, model_name: str | None, limit: int
) -> list[dict[str, Any]]:
    """Return the plant's newest reports (by window start) as sent, at most ``limit``."""
    records = MetricsReportRecord
    stmt = select(records.document).where(records.plant_id == plant_id)
    if model_name is not None:
        stmt = stmt.where(records.model_name == model_name)
    stmt = stmt.order_by(records.window_start.desc()).limit(limit)
    return [dict(doc) for doc in session.scalars(stmt)]


def latest_version_values(
    *, session: Session, plant_id: str, model_name: str, model_version: str, kind: MetricKind
) -> dict[str, tuple[float, dt.datetime]]:
    """Return the newest whole-model value of each metric of one version at a plant.

    Returns
    -------
    dict[str, tuple[float, datetime.datetime]]
        Metric -> (value, window end), from the newest window that has it.
    """
    obs = MetricObservation
    rows = session.execute(
        select(obs.metric, obs.value, obs.window_end)
        .where(
            obs.plant_id == plant_id,
            obs.model_name == model_name,
            obs.model_version == model_version,
            obs.kind == kind.value,
            obs.subject.is_(None),
        )
        .order_by(obs.window_end.desc(), obs.id.desc())
        .limit(500)
    ).all()
    out: dict[str, tuple[float, dt.datetime]] = {}
    for metric, value, end in rows:
        out.setdefault(metric, (float(value), end))
    return out


def last_report_at(*, session: Session, plant_id: str) -> dt.datetime | None:
    """When the hub last received a metrics report from a plant (None: never)."""
    return session.scalar(
        select(MetricsReportRecord.received_at)
        .where(MetricsReportRecord.plant_id == plant_id)
        .order_by(MetricsReportRecord.seq.desc())
        .limit(1)
    )


def last_report_by_plant(
    *, session: Session, plant_ids: list[str] | None
) -> dict[str, dt.datetime]:
    """When the hub last received a metrics report from each plant (never: absent)."""
    records = MetricsReportRecord
    # One (plant_id, received_at) index probe per enrolled plant, not a scan of every report.
    newest = (
        select(func.max(records.received_at))
        .where(records.plant_id == Plant.id)
        .correlate(Plant)
        .scalar_subquery()
    )
    stmt = select(Plant.id, newest)
    if plant_ids is not None:
        stmt = stmt.where(Plant.id.in_(plant_ids))
    return {str(p): t for p, t in session.execute(stmt) if t is not None}
