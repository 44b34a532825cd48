"""Retraining routes: labelling queue, labels, line signals, firings; they only translate HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from plant_node.auth.permissions import allow_line, allow_read
from plant_node.deps import SessionDep, SettingsDep
from plant_node.retraining import service
from plant_node.retraining.flows import label_budget
from plant_node.retraining.schemas import (
    FiringRead,
    LabelIn,
    LabelRead,
    LineSignalIn,
    LineSignalRead,
    QueuePage,
)

router = APIRouter(tags=["retraining"])

PredictionId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get("/labeling/queue", response_model=QueuePage, dependencies=allow_line)
def labeling_queue(
    session: SessionDep,
    settings: SettingsDep,
    baseline: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9_.-]+$")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> QueuePage:
    """Predictions to label, operator flags first, then the most uncertain ones."""
    return service.queue_page(
        session=session, budget_per_day=label_budget(settings), baseline=baseline,
        offset=offset, limit=limit,
    )


@router.post(
    "/labeling/{prediction_id}",
    response_model=LabelRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=allow_line,
)
def give_label(
    prediction_id: PredictionId, body: LabelIn, session: SessionDep, settings: SettingsDep
) -> LabelRead:
    """Label one prediction (a QA outcome); 409 once today's label budget is spent."""
    return service.give_label(
        session=session, prediction_id=prediction_id, body=body,
        budget_per_day=label_budget(settings),
    )


@router.post(
    "/line-signals",
    response_model=LineSignalRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=allow_line,
)
def line_signal(body: LineSignalIn, session: SessionDep) -> LineSignalRead:
    """Record a recipe / product-mix change of the line (for ``product_mix_change``)."""
    return service.add_line_signal(session=session, signal=body)


@router.get("/retraining/firings", response_model=list[FiringRead], dependencies=allow_read)
def firings(
    session: SessionDep,
    baseline: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[FiringRead]:
    """Triggers that fired, newest first, with their evidence."""
    return service.list_firings(session=session, baseline=baseline, limit=limit)
