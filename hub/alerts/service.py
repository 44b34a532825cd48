"""Open and close the hub's copy of plants' monitoring alerts, announcing each change.

The rule, applied once per report when the hub first stores it (a re-sent report or a later
revision of it changes nothing here: a revision carries the alerts as first reported):

1. Every alert in the report's ``alert_details`` whose rule (plant, model, version, key) the
   hub does not hold open becomes open: webhook ``alert.raised``. One already open is left
   alone (a node raises nothing new while its alert is open).
2. When the report carries ``open_alert_keys`` (a list, not null), every alert the hub holds
   open for that plant, model and version whose key the list lacks becomes cleared: webhook
   ``alert.cleared``. An alert raised and cleared within one window gives both, in order.
3. A report whose window ends before the newest window that changed a rule
   (``last_window_end``) does not change that rule: late, older news never reopens or
   closes an alert.

Ingestion holds the plant's write lock, so two reports of one plant never interleave.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.schemas.metrics_report import MetricsReport
from federation.schemas.rollouts import WebhookEvent
from hub.alerts.models import HubAlert
from hub.db import utcnow
from hub.webhooks import service as webhooks_service

OPEN, CLEARED = "open", "cleared"


def _data(row: HubAlert) -> dict[str, Any]:
    return {
        "plant_id": row.plant_id,
        "model": row.model_name,
        "model_version": row.model_version,
        "key": row.key,
        "kind": row.kind,
        "status": row.status,
        "raised_report_id": row.raised_report_id,
        "raised_window_end": row.raised_window_end.isoformat(),
        "cleared_report_id": row.cleared_report_id,
        "cleared_window_end": (
            None if row.cleared_window_end is None else row.cleared_window_end.isoformat()
        ),
        **row.detail,
    }


def apply_report(*, session: Session, plant_id: str, report: MetricsReport) -> tuple[int, int]:
    """Apply a newly stored report's alerts to the hub's state (flush only).

    Returns
    -------
    tuple[int, int]
        How many alerts were raised and how many cleared.
    """
    if not report.alert_details and report.open_alert_keys is None:
        return 0, 0
    rid, end = str(report.report_id), report.window_end
    rows = {
        r.key: r
        for r in session.scalars(
            select(HubAlert).where(
                HubAlert.plant_id == plant_id,
                HubAlert.model_name == report.model_name,
                HubAlert.model_version == report.model_version,
            )
        )
    }
    now = utcnow()
    raised: list[HubAlert] = []
    cleared: list[HubAlert] = []
    for alert in report.alert_details:
        row = rows.get(alert.key)
        if row is not None and (row.status == OPEN or end <= row.last_window_end):
            continue
        detail = {
            "since": None if alert.since is None else alert.since.isoformat(),
            "value": alert.value,
            "reference_mean": alert.reference_mean,
            "sigmas": alert.sigmas,
            "top_features": list(alert.top_features),
        }
        if row is None:
            row = HubAlert(plant_id=plant_id, model_name=report.model_name,
                           model_version=report.model_version, key=alert.key)  # fmt: skip
            session.add(row)
            rows[alert.key] = row
        row.kind = alert.kind.value
        row.status = OPEN
        row.detail = detail
        row.raised_report_id, row.raised_window_end = rid, end
        row.cleared_report_id, row.cleared_window_end = None, None
        row.last_window_end, row.updated_at = end, now
        raised.append(row)
    # Payloads are taken now: a row raised and cleared in this report is announced twice.
    raised_data = [_data(r) for r in raised]
    if report.open_alert_keys is not None:
        still_open = set(report.open_alert_keys)
        for key, row in sorted(rows.items()):
            if row.status != OPEN or key in still_open or end < row.last_window_end:
                continue
            row.status = CLEARED
            row.cleared_report_id, row.cleared_window_end = rid, end
            row.last_window_end, row.updated_at = end, now
            cleared.append(row)
    session.flush()
    webhooks_service.enqueue_many(
        session=session, event=WebhookEvent.ALERT_RAISED, items=raised_data
    )
    webhooks_service.enqueue_many(
        session=session, event=WebhookEvent.ALERT_CLEARED, items=[_data(r) for r in cleared]
    )
    return len(raised), len(cleared)


def open_alerts(*, session: Session, plant_id: str | None = None) -> list[HubAlert]:
    """Return the alerts the hub holds open (optionally one plant's), by plant, model, key."""
    stmt = select(HubAlert).where(HubAlert.status == OPEN)
    if plant_id is not None:
        stmt = stmt.where(HubAlert.plant_id == plant_id)
    return list(
        session.scalars(stmt.order_by(HubAlert.plant_id, HubAlert.model_name, HubAlert.key))
    )


def get_alert(
    *, session: Session, plant_id: str, model_name: str, model_version: str, key: str
) -> HubAlert | None:
    """Return one rule's alert row, or ``None`` when the hub never saw it raised."""
    return session.scalar(
        select(HubAlert).where(
            HubAlert.plant_id == plant_id,
            HubAlert.model_name == model_name,
            HubAlert.model_version == model_version,
            HubAlert.key == key,
        )
    )


__all__ = ["CLEARED", "OPEN", "apply_report", "get_alert", "open_alerts"]
