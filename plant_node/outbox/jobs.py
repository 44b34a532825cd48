"""Periodic outbox work: forget delivered messages, and keep the outbox within its budget.

The budget (``MILLWRIGHT_NODE_OUTBOX_MAX_MB``) holds through a long outage by compaction in
four steps, each only while the outbox is still over budget:

1. delete delivered rows, oldest first (whatever the retention);
2. drop unsent metrics reports superseded by a newer unsent revision of the same window
   (the hub would replace them with it anyway);
3. thin unsent metrics reports, oldest first: the per-chunk detail goes, the window's
   aggregates (drift, integrity, alerts, impact, counts) stay, under the same report id;
4. drop the oldest unsent metrics reports, and queue an alert that names what was dropped.

Only rows never sent (``attempts == 0``) are rewritten or dropped, so the hub never sees two
contents under one id. Alerts, feedback, rollout and retraining records (every stream but
``metrics``) are audit-relevant and never dropped: when they alone exceed the budget the
outbox grows past it, and the job logs an error and reports ``over_budget``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from plant_node.db import managed_session, utcnow
from plant_node.outbox import service as outbox_service
from plant_node.outbox.models import OutboxItem, OutboxStatus

log = logging.getLogger("millwright.node.outbox")

#: The only stream the budget may thin or drop (window aggregates, re-derivable).
COMPACTABLE_STREAM = "metrics"
#: Where the "reports dropped" alert goes (an audit stream: never dropped itself).
BUDGET_ALERT_STREAM = "alerts"
BUDGET_ALERT_KIND = "alert.outbox_budget"
#: Room step 4 leaves for its own alert (at most 200 keys), so the alert fits the budget too.
ALERT_RESERVE_BYTES = 16_000


def prune_delivered(session_factory: sessionmaker[Session], *, retention_days: float) -> int:
    """Delete delivered messages older than the retention; pending and rejected ones stay.

    Parameters
    ----------
    session_factory
        Opens the job's own session.
    retention_days
        Age (by delivery time) after which a delivered message is deleted.

    Returns
    -------
    int
        Rows deleted.
    """
    cutoff = utcnow() - timedelta(days=retention_days)
    with managed_session(session_factory) as session:
        result = session.execute(
            delete(OutboxItem).where(
                OutboxItem.status == OutboxStatus.DELIVERED, OutboxItem.delivered_at < cutoff
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


@dataclass
class BudgetReport:
    """What one pass of :func:`enforce_budget` did (sizes in bytes)."""

    budget: int
    size_before: int
    size_after: int = 0
    delivered_deleted: int = 0
    superseded_dropped: int = 0
    reports_thinned: int = 0
    reports_dropped: int = 0
    over_budget: bool = False
    #: nothing was left to thin or drop (only audit records and already-sent heads)
    audit_only: bool = False


def _base_key(key: str) -> str:
    # revision n of a report travels as "<report id>.r<n>" (plant_node.monitoring.flows)
    head, sep, tail = key.rpartition(".r")
    return head if sep and tail.isdigit() else key


def _unsent_metrics(session: Session) -> list[tuple[int, str, int]]:
    """(row id, key, bytes) of never-sent metrics rows, oldest first."""
    rows = session.execute(
        select(OutboxItem.id, OutboxItem.idempotency_key, outbox_service.row_bytes())
        .where(
            OutboxItem.stream == COMPACTABLE_STREAM,
            OutboxItem.status == OutboxStatus.PENDING,
            OutboxItem.attempts == 0,
        )
        .order_by(OutboxItem.seq)
    ).all()
    return [(int(i), str(k), int(b)) for i, k, b in rows]


def enforce_budget(session_factory: sessionmaker[Session], *, max_bytes: int) -> BudgetReport:
    """Bring the outbox under ``max_bytes`` by the steps of the module docstring.

    Parameters
    ----------
    session_factory
        Opens the job's own session (one transaction for the whole pass).
    max_bytes
        The budget, in the measure of :func:`plant_node.outbox.service.get_size_bytes`.

    Returns
    -------
    BudgetReport
        Sizes before and after and what each step removed.
    """
    with managed_session(session_factory) as session:
        size = outbox_service.get_size_bytes(session=session)["total"]
        report = BudgetReport(budget=max_bytes, size_before=size)
        if size > max_bytes:
            size = _compact(session, report, size, max_bytes)
        report.size_after = size
        report.over_budget = size > max_bytes
    if report.reports_dropped or report.reports_thinned or report.superseded_dropped:
        log.warning("outbox over its budget of %d bytes: %s", max_bytes, report)
    if report.over_budget and report.audit_only:
        log.error(
            "outbox holds %d bytes of audit records (alerts, feedback, rollout, retraining) "
            "past its budget of %d: they are never dropped; restore the hub link",
            size,
            max_bytes,
        )
    return report


def _compact(session: Session, report: BudgetReport, size: int, max_bytes: int) -> int:
    # 1. delivered rows, oldest delivery first
    delivered = session.execute(
        select(OutboxItem.id, outbox_service.row_bytes())
        .where(OutboxItem.status == OutboxStatus.DELIVERED)
        .order_by(OutboxItem.delivered_at, OutboxItem.id)
    ).all()
    doomed: list[int] = []
    for row_id, nbytes in delivered:
        if size <= max_bytes:
            break
        doomed.append(int(row_id))
        size -= int(nbytes)
    _delete(session, doomed)
    report.delivered_deleted = len(doomed)
    if size <= max_bytes:
        return size

    # 2. unsent revisions superseded by a newer unsent revision of the same window
    unsent = _unsent_metrics(session)
    newest: dict[str, int] = {}
    for row_id, key, _ in unsent:
        newest[_base_key(key)] = row_id  # oldest first: the last one seen is the newest
    doomed = []
    for row_id, key, nbytes in unsent:
        if size <= max_bytes:
            break
        if newest[_base_key(key)] != row_id:
            doomed.append(row_id)
            size -= nbytes
    _delete(session, doomed)
    report.superseded_dropped = len(doomed)
    if size <= max_bytes:
        return size

    # 3. thin unsent reports: the window's aggregates stay, the per-chunk detail goes
    gone = set(doomed)
    unsent = [u for u in unsent if u[0] not in gone]
    for row_id, _, _ in unsent:
        if size <= max_bytes:
            break
        item = session.get(OutboxItem, row_id)
        assert item is not None
        if not item.payload.get("chunks"):
            continue
        before = len(json.dumps(item.payload))
        item.payload = {**item.payload, "chunks": []}
        session.flush()
        size -= max(0, before - len(json.dumps(item.payload)))
        report.reports_thinned += 1
    size = outbox_service.get_size_bytes(session=session)["total"]
    if size <= max_bytes:
        return size

    # 4. drop the oldest unsent reports, and say so to the hub through an audit stream;
    #    measured again after each batch (the per-row estimate is not the stored length)
    dropped: list[str] = []
    target = max(0, max_bytes - ALERT_RESERVE_BYTES)
    while size > target:
        doomed = []
        estimate = size
        for row_id, key, nbytes in _unsent_metrics(session):
            if estimate <= target and doomed:
                break
            doomed.append(row_id)
            dropped.append(key)
            estimate -= nbytes
        if not doomed:
            break  # no unsent report left: only attempted heads and audit records
        _delete(session, doomed)
        size = outbox_service.get_size_bytes(session=session)["total"]
    report.reports_dropped = len(dropped)
    report.audit_only = not _unsent_metrics(session)
    if dropped:
        outbox_service.enqueue(
            session=session,
            stream=BUDGET_ALERT_STREAM,
            kind=BUDGET_ALERT_KIND,
            payload={
                "detail": "metrics reports dropped unsent: the outbox reached its disk budget",
                "budget_bytes": max_bytes,
                "dropped_reports": len(dropped),
                "report_keys": dropped[:200],
            },
        )
    return outbox_service.get_size_bytes(session=session)["total"]


def _delete(session: Session, ids: list[int]) -> None:
    for start in range(0, len(ids), 500):
        session.execute(delete(OutboxItem).where(OutboxItem.id.in_(ids[start : start + 500])))
    session.flush()
