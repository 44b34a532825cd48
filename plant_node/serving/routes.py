"""Serving routes: predict, read a prediction, feedback, model reload. They only translate HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, status

from federation.errors import Unavailable
from plant_node.deps import SessionDep, StateDep
from plant_node.serving import service as serving_service
from plant_node.serving.flows import ServingFlows
from plant_node.serving.schemas import (
    FeedbackCreate,
    FeedbackRead,
    PredictionDetail,
    PredictRequest,
    PredictResponse,
    RolloutStart,
)

router = APIRouter(tags=["serving"])


def _flows(state: Any) -> ServingFlows:
    if state.serving is None:
        raise Unavailable("Serving is not configured on this node.")
    flows: ServingFlows = state.serving
    return flows


@router.post("/predict", response_model=PredictResponse)
async def predict(
    body: PredictRequest, state: StateDep, background: BackgroundTasks
) -> PredictResponse:
    """Score one record or a batch; explanations follow right after the response.

    ``async`` on purpose: the node runs one worker on one core, so scoring in the event loop
    (a few ms of CPU) is cheaper than the thread-pool hop a sync route pays on every call.
    """
    flows = _flows(state)
    response, pending = flows.predict(body)
    if pending is not None:
        background.add_task(flows.explain_pending, pending)
    return response


@router.get("/predictions/{prediction_id}", response_model=PredictionDetail)
def get_prediction(prediction_id: str, session: SessionDep) -> PredictionDetail:
    """Return a logged prediction with its inputs, features, outputs and attributions."""
    row = serving_service.get_prediction_or_raise(session=session, prediction_id=prediction_id)
    return serving_service.to_detail(row)


@router.post("/feedback", response_model=FeedbackRead, status_code=status.HTTP_201_CREATED)
def create_feedback(body: FeedbackCreate, session: SessionDep, state: StateDep) -> FeedbackRead:
    """Record the floor's verdict on a prediction; its summary is queued for the hub."""
    row = serving_service.create_feedback(session=session, feedback_in=body)
    state.metrics.feedback.labels(body.verdict).inc()
    if state.sender is not None:
        state.sender.wake()
    return FeedbackRead.model_validate(row)


@router.post("/models/reload")
def reload_models(state: StateDep) -> dict[str, Any]:
    """Pull assignments from the hub (cache when away) and hot-swap to each champion."""
    return _flows(state).sync_models(state.model_source)


@router.get("/rollout")
def rollout_status(state: StateDep) -> dict[str, Any]:
    """Champion and challenger of every baseline, with the challenger's record."""
    return _flows(state).rollout_status()


@router.post("/rollout")
def start_rollout(body: RolloutStart, state: StateDep) -> dict[str, Any]:
    """Stage a cached version as challenger, or promote it with mode ``full``."""
    return _flows(state).start_rollout(body.baseline, body.version, body.mode)


@router.delete("/rollout/{baseline}", status_code=status.HTTP_204_NO_CONTENT)
def stop_rollout(baseline: str, state: StateDep) -> None:
    """Withdraw a baseline's challenger (recorded as an operator rollback)."""
    _flows(state).stop_rollout(baseline, "withdrawn by operator")
