"""Metrics reports in the outbox reach the hub through ``HubClient.submit_metrics_report``.

The hub side (route and client method) is built on another branch; a mirror of the hub
client stands in for it here, the way the outbox tests mirror the events endpoint.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from federation.errors import Conflict
from federation.schemas.metrics_report import MetricsReport, report_id
from plant_node.db import managed_session
from plant_node.outbox import service as outbox_service
from plant_node.outbox.deliverers import HubClientDeliverer
from plant_node.outbox.models import OutboxStatus
from plant_node.outbox.sender import OutboxSender


class MirrorHubClient:
    """Records what the node sends; holds each report id once, like the hub (per plant).

    An identical re-send is a 2xx duplicate; the same id with other content is a 409.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, list[Any]]] = []
        self.reports: dict[str, tuple[str, MetricsReport]] = {}

    def post_events(self, plant_id: str, events: list[Any]) -> None:
        self.events.append((plant_id, events))

    def submit_metrics_report(
        self, plant_id: str, report: MetricsReport, *, idempotency_key: str
    ) -> dict[str, str]:
        if idempotency_key in self.reports:
            if self.reports[idempotency_key] == (plant_id, report):
                return {"report_id": str(report.report_id), "duplicate": "true"}
            raise Conflict(f"report {idempotency_key} already stored with other content")
        self.reports[idempotency_key] = (plant_id, report)
        return {"report_id": str(report.report_id)}


def _report(hour: int) -> MetricsReport:
    start = dt.datetime(2026, 3, 1, hour, tzinfo=dt.UTC)
    end = start + dt.timedelta(minutes=50)
    rid = report_id(plant_id="plant-a", model_name="fd001-ridge", model_version="1", start=start,
                    end=end, secret=b"plant-held-secret-0123")  # fmt: skip
    return MetricsReport(
        report_id=rid, plant_id="plant-a", model_name="fd001-ridge", model_version="1",
        window_start=start, window_end=end, n_rows=500, min_rows_policy=100,
    )  # fmt: skip


def _enqueue(
    factory: sessionmaker[Session], stream: str, key: str, payload: dict[str, Any]
) -> None:
    with managed_session(factory) as session:
        outbox_service.enqueue(session=session, stream=stream, key=key, payload=payload)


def test_metrics_stream_goes_to_submit_metrics_report(session_factory: sessionmaker[Session]):
    hub = MirrorHubClient()
    reports = [_report(8), _report(9)]
    for r in reports:
        _enqueue(session_factory, "metrics", str(r.report_id), r.model_dump(mode="json"))
    _enqueue(session_factory, "alerts", "alert-1", {"detail": "fallback"})
    # the same report again under its id: the hub already holds it
    hub.reports[str(reports[0].report_id)] = ("plant-a", reports[0])
    bad = _report(10).model_dump(mode="json") | {"raw_rows": [[1.0, 2.0]]}
    _enqueue(session_factory, "metrics", "bad-report", bad)

    result = OutboxSender(session_factory, HubClientDeliverer(hub, "plant-a")).drain_once()

    assert (result.delivered, result.rejected) == (3, 1)
    assert hub.reports[str(reports[1].report_id)] == ("plant-a", reports[1])
    assert len(hub.reports) == 2  # the duplicate counted as delivered, the bad one never left
    assert [(p, [e.id for e in ev]) for p, ev in hub.events] == [("plant-a", ["alert-1"])]
    with session_factory() as session:
        status = {i.idempotency_key: i.status for i in outbox_service.list_items(session=session)}
    assert status["bad-report"] == OutboxStatus.REJECTED
    assert uuid.UUID(next(k for k in status if k not in ("alert-1", "bad-report")))
