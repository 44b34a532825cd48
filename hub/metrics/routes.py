"""HTTP routes of the cross-plant metrics registry."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from hub.config import API_PREFIX
from hub.deps import ActorDep, IdempotencyDep, PageSizeDep, SessionDep, SettingsDep
from hub.metrics import service
from hub.metrics.permissions import ReadMetricsScope, ReadPlantMetrics, WriteMetrics
from hub.metrics.schemas import (
    DailySeries,
    MetricKind,
    MetricObservationPage,
    MetricsReport,
    MetricsReportBatch,
    MetricsReportBatchReceipt,
    MetricsReportReceipt,
    MetricSummary,
    MonthlyTotals,
)
from hub.responses import json_response

router = APIRouter(prefix=API_PREFIX, tags=["metrics"])

FromQuery = Annotated[
    dt.datetime | None,
    Query(alias="from", description="Only windows starting at or after this time."),
]
ToQuery = Annotated[
    dt.datetime | None, Query(alias="to", description="Only windows starting before this time.")
]


def _filters(
    scope: str | None,
    model: str | None,
    model_version: str | None,
    metric: str | None,
    kind: MetricKind | None,
    subject: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> dict[str, Any]:
    return {
        "plant_id": scope,
        "model_name": model,
        "model_version": model_version,
        "metric": metric,
        "kind": kind.value if kind else None,
        "subject": subject,
        "start": start,
        "end": end,
    }


@router.post(
    "/plants/{plant_id}/metrics-reports",
    response_model=MetricsReportReceipt,
    status_code=201,
    responses={200: {"model": MetricsReportReceipt, "description": "Already stored (re-send)."}},
    dependencies=[WriteMetrics],
)
def submit_metrics_report(
    plant_id: str,
    report: MetricsReport,
    session: SessionDep,
    actor: ActorDep,
    idem: IdempotencyDep,
) -> Response:
    """Store a plant's metrics report: 201 when new, 200 with the first receipt on a re-send."""
    receipt = service.ingest_report(
        session=session, plant_id=plant_id, report=report, actor=actor, idem=idem
    )
    return json_response(receipt, status_code=200 if receipt.duplicate else 201)


@router.post(
    "/plants/{plant_id}/metrics-reports/batch",
    response_model=MetricsReportBatchReceipt,
    status_code=201,
    dependencies=[WriteMetrics],
)
def submit_metrics_reports(
    plant_id: str,
    batch: MetricsReportBatch,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    idem: IdempotencyDep,
) -> Response:
    """Store up to ``max_batch_size`` reports of a plant at once (all or nothing).

    Each report is de-duplicated and revised as by the single-report route; the same
    Idempotency-Key replays the first answer.
    """
    receipt = service.ingest_reports(
        session=session,
        plant_id=plant_id,
        reports=batch.reports,
        actor=actor,
        max_batch=settings.max_batch_size,
        idem=idem,
    )
    return json_response(receipt, status_code=201)


@router.get(
    "/plants/{plant_id}/metrics-reports/{report_id}",
    response_model=MetricsReport,
    dependencies=[ReadPlantMetrics],
)
def get_metrics_report(plant_id: str, report_id: uuid.UUID, session: SessionDep) -> Response:
    """Return one stored report exactly as the plant sent it."""
    document = service.get_report_document(
        session=session, plant_id=plant_id, report_id=str(report_id)
    )
    return Response(json.dumps(document), media_type="application/json")


@router.get("/metrics", response_model=MetricObservationPage)
def list_metrics(
    scope: ReadMetricsScope,
    session: SessionDep,
    page_size: PageSizeDep,
    plant_id: str | None = None,
    model: str | None = None,
    model_version: str | None = None,
    metric: str | None = None,
    kind: MetricKind | None = None,
    subject: str | None = None,
    start: FromQuery = None,
    end: ToQuery = None,
    page_token: str | None = None,
) -> Response:
    """List metric observations of every plant the caller may see, ordered by window.

    ``plant_id`` filters on one plant; a plant token sees only its own plant (403 for
    another). ``from``/``to`` select windows that start in ``[from, to)``.
    """
    del plant_id  # read (and checked against the token) by ReadMetricsScope
    filters = _filters(scope, model, model_version, metric, kind, subject, start, end)
    items, token = service.list_observations(
        session=session, filters=filters, page_size=page_size, page_token=page_token
    )
    return json_response(MetricObservationPage(items=items, next_page_token=token))


@router.get("/metrics/summary", response_model=MetricSummary)
def summarize_metrics(
    scope: ReadMetricsScope,
    session: SessionDep,
    plant_id: str | None = None,
    model: str | None = None,
    model_version: str | None = None,
    metric: str | None = None,
    kind: MetricKind | None = None,
    subject: str | None = None,
) -> Response:
    """Return the latest value (by window end) of every plant x model x kind x metric x subject.

    Filters apply to those latest values; a plant token sees only its own plant.
    """
    del plant_id  # read (and checked against the token) by ReadMetricsScope
    filters = _filters(scope, model, model_version, metric, kind, subject, None, None)
    return json_response(service.summarize(session=session, filters=filters))


DayFrom = Annotated[dt.date, Query(alias="from", description="First day (UTC) included.")]
DayTo = Annotated[dt.date, Query(alias="to", description="Last day (UTC) included.")]


@router.get("/metrics/daily", response_model=DailySeries)
def daily_metrics(
    scope: ReadMetricsScope,
    session: SessionDep,
    model: str,
    metric: str,
    start: DayFrom,
    end: DayTo,
    kind: Annotated[list[MetricKind] | None, Query()] = None,
    plants: Annotated[list[str] | None, Query(max_length=100)] = None,
    plant_id: str | None = None,
) -> Response:
    """Daily means of one model's metric per plant (from the rollup kept at ingest).

    ``kind`` defaults to estimated and realized; ``plants`` limits the plants (a plant token
    sees only its own).
    """
    del plant_id  # read (and checked against the token) by ReadMetricsScope
    selected = [scope] if scope is not None else plants
    if scope is not None and plants and set(plants) - {scope}:
        selected = [p for p in plants if p == scope]
    kinds = tuple(kind or (MetricKind.ESTIMATED, MetricKind.REALIZED))
    items = service.daily_series(
        session=session,
        plant_ids=selected,
        model_name=model,
        metric=metric,
        kinds=kinds,
        start=start,
        end=end,
    )
    return json_response(DailySeries(items=items))


@router.get("/metrics/monthly", response_model=MonthlyTotals)
def monthly_metrics(
    scope: ReadMetricsScope,
    session: SessionDep,
    kind: MetricKind,
    start: DayFrom,
    end: DayTo,
    metric: Annotated[list[str] | None, Query()] = None,
    model: str | None = None,
    plant_id: str | None = None,
) -> Response:
    """Monthly sums per plant and model of a kind's feature-less series (e.g. ``impact``)."""
    del plant_id  # read (and checked against the token) by ReadMetricsScope
    metrics = tuple(metric or ("units", "caught", "missed", "false_alarms"))
    items = service.monthly_totals(
        session=session,
        plant_ids=[scope] if scope else None,
        kind=kind,
        metrics=metrics,
        start=start,
        end=end,
        model_name=model,
    )
    return json_response(MonthlyTotals(items=items))
