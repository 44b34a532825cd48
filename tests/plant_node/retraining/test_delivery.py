"""A fired trigger's request through the outbox and the typed hub client: waits, then once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from federation.hub_client import HubClient
from federation.schemas.retraining import RetrainingRequestCreate
from plant_node.outbox import service as outbox_service
from plant_node.outbox.deliverers import HubClientDeliverer
from plant_node.outbox.models import OutboxStatus
from plant_node.outbox.sender import OutboxSender
from plant_node.outbox.types import RetryPolicy
from plant_node.retraining import service
from policies.parsing import validate_policy
from tests.plant_node.retraining.helpers import T0, add_chunks, add_drift_alert

NO_WAIT = RetryPolicy(base_delay_s=0.0, max_delay_s=0.0, jitter=0.0)


class Hub:
    """The hub's two routes the deliverer calls, idempotent by request id; down until up.

    The version id comes from the plant's assignments: a plant token may not read the
    registry (the real hub answers 403 on ``/models/{name}/versions/{label}``).
    """

    def __init__(self) -> None:
        self.up = False
        self.stored: dict[str, dict[str, Any]] = {}
        self.posts = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("hub down", request=request)
        path = request.url.path
        if request.method == "GET" and path == "/api/v1/plants/plant-t/assignments":
            return httpx.Response(200, json=_assignments(42))
        if request.method == "POST" and path == "/api/v1/plants/plant-t/retraining-requests":
            self.posts += 1
            body = json.loads(request.content)
            req = RetrainingRequestCreate.model_validate(body)
            assert request.headers["Idempotency-Key"] == req.id
            first = req.id not in self.stored
            self.stored.setdefault(req.id, body)
            read = {**self.stored[req.id], "plant_id": "plant-t", "decision": "pending",
                    "received_at": datetime.now(UTC).isoformat()}  # fmt: skip
            return httpx.Response(201 if first else 200, json=read)
        return httpx.Response(404, json={"type": "about:blank", "title": "Not found",
                                         "status": 404, "code": "not_found"})  # fmt: skip


def _assignments(vid: int) -> dict[str, Any]:
    return {"plant_id": "plant-t", "items": [
        {"model": "cmapss-model", "alias": "champion", "version_id": vid, "version": "1.0",
         "recipe_id": None, "artifact_digest": None, "artifact_size_bytes": None,
         "updated_at": T0.isoformat()},
    ]}  # fmt: skip


def test_request_waits_while_the_hub_is_down_and_is_delivered_once(
    session_factory: sessionmaker[Session],
) -> None:
    policy = validate_policy(
        {"kind": "retraining", "id": "r", "version": 1, "title": "t",
         "triggers": [{"kind": "drift_sustained", "name": "drift", "chunks": 2,
                       "min_evidence": 0}]}
    )  # fmt: skip
    hub = Hub()
    transport = httpx.MockTransport(hub)
    client = HubClient(
        "http://hub", client=httpx.Client(base_url="http://hub", transport=transport), retries=0
    )
    sender = OutboxSender(session_factory, HubClientDeliverer(client, "plant-t"), policy=NO_WAIT)
    with session_factory() as session:
        add_chunks(session, [20.0] * 4)
        add_drift_alert(session, since_chunk=2)
        checks = service.evaluate(session=session, policy=policy, plant_id="plant-t",  # type: ignore[arg-type]
                                  now=datetime(2026, 11, 2, 5, tzinfo=UTC))  # fmt: skip
    (firing,) = [c.firing for c in checks if c.new]
    assert firing is not None

    sender.drain_once()  # the hub is unreachable: the request waits
    with session_factory() as session:
        item = outbox_service.get_item(session=session, idempotency_key=firing.id)
        assert item is not None and item.status == OutboxStatus.PENDING and item.attempts == 1

    hub.up = True
    sender.drain_once()
    sender.drain_once()
    with session_factory() as session:
        item = outbox_service.get_item(session=session, idempotency_key=firing.id)
        assert item is not None and item.status == OutboxStatus.DELIVERED
    assert hub.posts == 1 and list(hub.stored) == [firing.id]
    sent = hub.stored[firing.id]
    assert sent["version_id"] == 42 and sent["model"] == "cmapss-model"
    assert sent["condition"] == "drift_sustained" and sent["trigger"] == "drift"
    assert sent["evidence"]["drift.sustained_chunks"] == 2.0
    # a redelivery (the outbox lost its acknowledgement) gets the stored request back
    request = RetrainingRequestCreate.model_validate(sent)
    again = client.submit_retraining_request("plant-t", request)
    assert again.id == firing.id and hub.posts == 2 and len(hub.stored) == 1
