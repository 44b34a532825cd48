"""HTTP routes of retraining requests and the "why did this model change" chain."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hub.config import API_PREFIX
from hub.deps import ActorDep, IdPath, PageSizeDep, SessionDep, SettingsDep
from hub.responses import json_response
from hub.retraining import flows, service
from hub.retraining.permissions import ReadPlantRetraining, ReadRetraining, RequestRetraining
from hub.retraining.schemas import (
    RetrainingChain,
    RetrainingDecision,
    RetrainingRequestCreate,
    RetrainingRequestPage,
    RetrainingRequestRead,
)

router = APIRouter(prefix=API_PREFIX, tags=["retraining"])


@router.post(
    "/plants/{plant_id}/retraining-requests",
    response_model=RetrainingRequestRead,
    status_code=201,
    dependencies=[RequestRetraining],
    responses={200: {"model": RetrainingRequestRead, "description": "Redelivery: stored one."}},
)
def request_retraining(
    plant_id: str,
    body: RetrainingRequestCreate,
    session: SessionDep,
    actor: ActorDep,
    settings: SettingsDep,
) -> Response:
    """Receive a fired trigger; the hub decides by policy (201) or returns the stored one (200)."""
    row, created = flows.receive_request(
        session=session, actor=actor, plant_id=plant_id, request_in=body
    )
    if created:
        row = flows.start_training(
            session=session, row=row, actor=actor, rounds=settings.retraining_rounds
        )
    return json_response(service.to_read(row), status_code=201 if created else 200)


@router.get(
    "/retraining-requests", response_model=RetrainingRequestPage, dependencies=[ReadRetraining]
)
def list_requests(
    session: SessionDep,
    page_size: PageSizeDep,
    plant_id: str | None = None,
    model: str | None = None,
    decision: RetrainingDecision | None = None,
    page_token: str | None = None,
) -> RetrainingRequestPage:
    """Retraining requests of the fleet, newest first, optionally of one plant/model/decision."""
    rows, token = service.list_requests(
        session=session, plant_id=plant_id, model=model, decision=decision,
        page_size=page_size, page_token=page_token,
    )
    return RetrainingRequestPage(items=[service.to_read(r) for r in rows], next_page_token=token)


@router.get(
    "/plants/{plant_id}/retraining-requests/{request_id}",
    response_model=RetrainingRequestRead,
    dependencies=[ReadPlantRetraining],
)
def get_request(plant_id: str, request_id: str, session: SessionDep) -> RetrainingRequestRead:
    """One request of a plant with the hub's decision."""
    row = service.get_request_or_raise(session=session, plant_id=plant_id, request_id=request_id)
    return service.to_read(row)


@router.get(
    "/plants/{plant_id}/retraining-requests/{request_id}/chain",
    response_model=RetrainingChain,
    dependencies=[ReadPlantRetraining],
)
def get_chain(plant_id: str, request_id: str, session: SessionDep) -> RetrainingChain:
    """Request -> decision -> candidate -> promotion, with their audit entries."""
    row = service.get_request_or_raise(session=session, plant_id=plant_id, request_id=request_id)
    return flows.chain_of(session=session, row=row)


@router.get(
    "/versions/{version_id}/retraining-chain",
    response_model=RetrainingChain,
    dependencies=[ReadRetraining],
)
def why_version(version_id: IdPath, session: SessionDep) -> RetrainingChain:
    """Why this version exists: the retraining that produced it, in one answer."""
    return flows.why_version(session=session, version_id=version_id)
