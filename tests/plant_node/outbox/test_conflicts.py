"""A 409 from the hub is a conflict, never "delivered" (issue 18, defect 2).

The node used to treat any 409 as "already delivered": plant p2 posting under p1's pending
report id made p1's node drop its report while the hub kept p2's content. These tests run
the node's outbox against the real hub app.
"""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from federation.hub_client import HubClient
from federation.schemas.auth import Role, TokenCreate
from hub.auth import service as auth_service
from plant_node.db import managed_session
from plant_node.outbox import service as outbox_service
from plant_node.outbox.deliverers import METRICS_STREAM, HubClientDeliverer
from plant_node.outbox.models import OutboxStatus
from plant_node.outbox.sender import OutboxSender
from plant_node.outbox.types import OutboxMessage, RetryPolicy
from tests.hub.fixtures import Tokens, auth
from tests.hub.metrics.reports import body, report

API = "/api/v1"
#: No waiting between attempts, so one drain pass per attempt.
NO_WAIT = RetryPolicy(base_delay_s=0.0, max_delay_s=0.0, jitter=0.0, conflict_attempts=3)


def _enqueue_report(factory: sessionmaker[Session], payload: dict[str, object]) -> str:
    key = str(payload["report_id"])
    with managed_session(factory) as session:
        outbox_service.enqueue(session=session, stream=METRICS_STREAM, key=key, payload=payload)
    return key


def _status(factory: sessionmaker[Session], key: str) -> tuple[str, int, str | None]:
    with factory() as session:
        item = outbox_service.get_item(session=session, idempotency_key=key)
        assert item is not None
        return item.status, item.attempts, item.last_error


def test_another_plant_posting_under_our_pending_id_cannot_make_our_report_disappear(
    client: TestClient, app: FastAPI, tokens: Tokens, session_factory: sessionmaker[Session]
) -> None:
    # Prepare: p1's report waits in its outbox; p2 posts its own content under that id.
    mine = report("fd001", rmse=18.0)
    key = _enqueue_report(session_factory, body(mine))
    with app.state.session_factory() as session:
        p2 = auth_service.create_token(
            session=session, token_in=TokenCreate(role=Role.PLANT, plant_id="fd002"), actor="t"
        ).token
    forged = {**body(report("fd002", rmse=99.0)), "report_id": key}
    assert (
        client.post(
            f"{API}/plants/fd002/metrics-reports", json=forged, headers=auth(p2)
        ).status_code
        == 201
    )
    hub = HubClient(client=client, token=tokens.plant, retries=0)

    # Execute
    result = OutboxSender(session_factory, HubClientDeliverer(hub, "fd001")).drain_once()

    # Assert: delivered for real, and the hub serves p1's own content under p1's id.
    assert (result.delivered, result.conflicts) == (1, 0)
    assert _status(session_factory, key)[0] == OutboxStatus.DELIVERED
    stored = client.get(f"{API}/plants/fd001/metrics-reports/{key}", headers=auth(tokens.admin))
    assert stored.status_code == 200 and stored.json() == body(mine)


def test_a_409_is_retried_then_parked_as_conflict_and_alerted_never_delivered(
    client: TestClient,
    tokens: Tokens,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Prepare: the hub already holds this plant's id with other content at the same revision.
    stale = report("fd001", rmse=18.0)
    assert (
        client.post(
            f"{API}/plants/fd001/metrics-reports", json=body(stale), headers=auth(tokens.plant)
        ).status_code
        == 201
    )
    key = _enqueue_report(session_factory, body(report("fd001", rmse=25.0)))
    outcomes: list[tuple[str, str]] = []

    def record(outcome: str, message: OutboxMessage) -> None:
        outcomes.append((outcome, message.idempotency_key))

    hub = HubClient(client=client, token=tokens.plant, retries=0)
    sender = OutboxSender(
        session_factory, HubClientDeliverer(hub, "fd001"), policy=NO_WAIT, on_result=record
    )

    # Execute: the first pass conflicts and keeps it pending; the third attempt parks it.
    first = sender.drain_once()
    after_first = _status(session_factory, key)
    with caplog.at_level(logging.ERROR, logger="millwright.node.outbox"):
        sender.drain_once()
        last = sender.drain_once()

    # Assert
    assert (first.delivered, first.conflicts, first.blocked_streams) == (0, 1, [METRICS_STREAM])
    assert after_first[:2] == (OutboxStatus.PENDING, 1)
    assert (last.delivered, last.conflicts) == (0, 1)
    status, attempts, error = _status(session_factory, key)
    assert (status, attempts) == (OutboxStatus.CONFLICT, 3)
    assert error is not None and error.startswith("conflict:")
    assert outcomes == [("conflict", key)] * 3
    assert any("ALERT" in r.getMessage() and key in r.getMessage() for r in caplog.records)
    with session_factory() as session:
        stats = outbox_service.get_stats(session=session)
    assert (stats.delivered, stats.pending, stats.conflict) == (0, 0, 1)
