"""Monitoring routes: outcomes in, alerts and chunk results out. They only translate HTTP."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, status

from plant_node.auth.permissions import allow_line, allow_read
from plant_node.deps import SessionDep
from plant_node.monitoring import service
from plant_node.monitoring.schemas import AlertRead, ChunkRead, OutcomeBatch, OutcomeResult

router = APIRouter(tags=["monitoring"])


@router.post(
    "/outcomes",
    response_model=OutcomeResult,
    status_code=status.HTTP_201_CREATED,
    dependencies=allow_line,
)
def create_outcomes(
    body: OutcomeBatch,
    session: SessionDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> OutcomeResult:
    """Record labels as they arrive, all or nothing.

    Failure records ``{unit, failed_at_cycle}`` and QA verdicts ``{prediction_id, label}``,
    one or ``{"outcomes": [...]}``.
    """
    return service.create_outcomes(session=session, batch=body, idempotency_key=idempotency_key)


@router.get("/alerts", response_model=list[AlertRead], dependencies=allow_read)
def list_alerts(
    session: SessionDep,
    status: Literal["open", "closed"] | None = None,
    baseline: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlertRead]:
    """Return monitoring alerts, newest first."""
    return service.list_alerts(session=session, status=status, baseline=baseline, limit=limit)


@router.get("/monitoring/chunks", response_model=list[ChunkRead], dependencies=allow_read)
def list_chunks(
    session: SessionDep,
    baseline: str | None = None,
    model_version: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[ChunkRead]:
    """Return the newest chunks, oldest first: estimated vs realized metric, drift."""
    return service.list_chunks(
        session=session, baseline=baseline, model_version=model_version, limit=limit
    )
