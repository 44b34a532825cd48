"""A node's queued retraining request reaches the hub with the plant's own token.

The node queues the served version *label* (and names the model as it serves it); the
deliverer resolves both through the plant's assignments, the one registry view a plant
token may read. Before, it asked the registry by label and the hub answered 403 forever.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.schemas.retraining import RetrainingDecision
from plant_node.outbox.deliverers import RETRAINING_STREAM, HubClientDeliverer
from plant_node.outbox.types import OutboxMessage, PermanentDeliveryError
from tests.hub.fixtures import Tokens
from tests.hub.retraining.test_candidates import Loop, _loop

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def loop(app: FastAPI, client: TestClient, tokens: Tokens) -> Loop:
    return _loop(app, client, tokens, approvals=0)


def _message(model: str, version: str) -> OutboxMessage:
    request_id = uuid.uuid4().hex
    return OutboxMessage(
        stream=RETRAINING_STREAM, seq=1, kind="retraining.requested",
        idempotency_key=request_id, created_at=dt.datetime.now(dt.UTC),
        payload={
            "id": request_id, "model": model, "version": version, "policy": "retrain-cand@1",
            "trigger": "drift", "condition": "drift_sustained",
            "fired_at": "2026-12-07T09:00:00+00:00",
            "evidence": {"drift.sustained_chunks": 5, "labels.new": 80},
            "labelled_window": 80, "note": "drift sustained",
        },
    )


@pytest.mark.parametrize("served_as", ["turbofan-rul", "cmapss"])
def test_plant_token_delivers_the_request_resolved_through_assignments(
    loop: Loop, served_as: str
) -> None:
    message = _message(served_as, "1.0")
    HubClientDeliverer(loop.plant, "fd001").deliver(message)

    stored = loop.admin.get_retraining_request("fd001", message.payload["id"])
    assert stored.model == "turbofan-rul" and stored.version_id == loop.champion_id
    assert stored.decision is RetrainingDecision.LOCAL_FINE_TUNE


def test_a_version_the_hub_does_not_assign_is_a_permanent_failure(loop: Loop) -> None:
    with pytest.raises(PermanentDeliveryError, match="no single version '9.9'.*turbofan-rul 1.0"):
        HubClientDeliverer(loop.plant, "fd001").deliver(_message("turbofan-rul", "9.9"))
