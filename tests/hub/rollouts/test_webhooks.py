"""Signed webhooks: subscriptions, a real receiver verifying Standard Webhooks signatures,
retry after a receiver failure, one delivery id per event."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from federation.errors import InvalidInput, NotFound
from federation.hub_client import HubClient
from federation.schemas.events import PlantEventCreate
from federation.schemas.registry import VersionCreate
from federation.schemas.rollouts import WebhookEvent
from hub.webhooks import service as webhooks_service
from hub.webhooks.worker import WebhookSender
from tests.hub.fixtures import auth
from tests.hub.rollouts.conftest import SQLITE_ONLY, Fleet


class Receiver:
    """An HTTP server on a free port that records every request and fails the first ones."""

    def __init__(self, fail_first: int) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(fail_first=1) as server:
        yield server


def test_signed_deliveries_with_retry(fleet: Fleet, receiver: Receiver) -> None:
    events = [
        WebhookEvent.ROLLOUT_STARTED,
        WebhookEvent.PROMOTION_DECIDED,
        WebhookEvent.ALERT_RECEIVED,
        WebhookEvent.ROLLBACK,
    ]
    created = fleet.admin.create_webhook(receiver.url, events, description="test receiver")
    assert created.secret.startswith("whsec_")
    listed = fleet.client.get("/api/v1/webhooks", headers=auth(fleet.tokens.admin)).json()
    assert "secret" not in listed["items"][0]
    # Something happens: a rollout starts, a promotion is decided, a plant raises an alert,
    # a plant is rolled back.
    fleet.start(plants=["fd001", "fd002"])
    fleet.admin.promote(fleet.v2, "fd003", policy="gate-auto@1")
    fleet.admin.post_events(
        "fd004",
        [
            PlantEventCreate(
                id=uuid.uuid4().hex,
                kind="alert.drift",
                occurred_at=dt.datetime.now(dt.UTC),
                payload={"feature": "s2"},
            )
        ],
    )
    fleet.admin.rollback("turbofan-rul", plant="fd003")
    settings = fleet.app.state.settings.model_copy(
        update={"webhook_backoff_seconds": 0.05, "webhook_timeout_seconds": 2.0}
    )
    sender = WebhookSender(settings=settings, session_factory=fleet.app.state.session_factory)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            sender.tick()
            with fleet.app.state.session_factory() as session:
                rows = webhooks_service.list_deliveries(session=session, webhook_id=created.id)
            if rows and all(r.status == "delivered" for r in rows):
                break
            time.sleep(0.06)
    finally:
        sender.stop()
    assert [r.event_type for r in rows] == [
        "rollout.started",
        "promotion.decided",
        "alert.received",
        "rollback.completed",
    ]
    assert all(r.status == "delivered" for r in rows)
    assert rows[0].attempts == 2 and rows[0].last_status_code == 204
    assert all(r.attempts == 1 for r in rows[1:])
    # Every request the receiver got verifies with the subscription's secret.
    hook = Webhook(created.secret)
    ids = []
    for headers, body in receiver.requests:
        payload = hook.verify(body, headers)
        ids.append(headers["webhook-id"])
        assert payload["type"] in {e.value for e in events}
    # The failed first attempt was retried under the same id; no other id repeats.
    assert ids.count(ids[0]) == 2
    assert sorted(ids.count(i) for i in set(ids)) == [1] * (len(rows) - 1) + [2]
    assert set(ids) == {r.message_id for r in rows}
    # A forged body does not verify.
    headers, body = receiver.requests[-1]
    with pytest.raises(Exception, match="(?i)signature"):
        hook.verify(body.replace(b'"type"', b'"tipe"'), headers)
    counts = fleet.admin.list_webhooks().items[0]
    assert (counts.delivered, counts.pending, counts.failed) == (len(rows), 0, 0)
    fleet.admin.delete_webhook(created.id)
    assert fleet.admin.list_webhooks().items == []


@SQLITE_ONLY
def test_unreachable_receiver_fails_after_max_attempts(fleet: Fleet) -> None:
    created = fleet.admin.create_webhook("http://127.0.0.1:9/none", [WebhookEvent.ROLLBACK])
    fleet.admin.promote(fleet.v2, "fd001", policy="gate-auto@1")
    fleet.admin.rollback("turbofan-rul", plant="fd001")
    settings = fleet.app.state.settings.model_copy(
        update={
            "webhook_backoff_seconds": 0.01,
            "webhook_max_attempts": 2,
            "webhook_timeout_seconds": 0.5,
        }
    )
    sender = WebhookSender(settings=settings, session_factory=fleet.app.state.session_factory)
    try:
        for _ in range(4):
            sender.tick()
            time.sleep(0.03)
    finally:
        sender.stop()
    with fleet.app.state.session_factory() as session:
        (row,) = webhooks_service.list_deliveries(session=session, webhook_id=created.id)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 2, None)
    assert row.last_error
    # The delivery log shows both attempts; a redelivery queues it again under the same id.
    (logged,) = fleet.admin.list_webhook_deliveries(created.id, status="failed").items
    assert [a.status_code for a in logged.log] == [None, None]
    assert all(a.error and a.latency_ms >= 0 for a in logged.log)
    again = fleet.admin.redeliver_webhook(created.id, logged.id)
    assert (again.status, again.attempts, again.message_id) == ("pending", 0, row.message_id)
    assert fleet.admin.list_webhook_deliveries(created.id, status="failed").items == []
    with pytest.raises(NotFound):
        fleet.admin.redeliver_webhook(created.id, logged.id + 100)
    # Rotation: a new secret; while the grace lasts a delivery carries both signatures, so a
    # receiver still on the old secret verifies, and one on the new secret too.
    rotated = fleet.admin.rotate_webhook_secret(created.id, grace_seconds=60)
    assert rotated.secret.startswith("whsec_") and rotated.secret != created.secret
    with fleet.app.state.session_factory() as session:
        sub = webhooks_service.get_subscription_or_raise(session=session, webhook_id=created.id)
        now = dt.datetime.now(dt.UTC)
        secrets = webhooks_service.signing_secrets(sub, now=now)
        assert secrets == [rotated.secret, created.secret]
        body = b'{"type":"rollback.completed"}'
        headers = webhooks_service.signed_headers(
            secret=secrets, message_id="msg_1", body=body, at=now
        )
        later = webhooks_service.signing_secrets(sub, now=now + dt.timedelta(seconds=61))
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(created.secret).verify(body, headers)
    Webhook(rotated.secret).verify(body, headers)
    assert later == [rotated.secret]


@SQLITE_ONLY
def test_bad_webhook_urls_are_refused(admin_hub: HubClient) -> None:
    bad = [
        "ftp://example.com/x",
        "http://user:pw@example.com/x",
        "http:///nohost",
        "file:///etc/x",
        "https://example.com:99999/x",
        "https://example.com/x#frag",
    ]
    for url in bad:
        with pytest.raises(InvalidInput):
            admin_hub.create_webhook(url, [WebhookEvent.ROLLBACK])
    assert admin_hub.list_webhooks().items == []


def test_version_registered_and_promotion_requested_are_announced(fleet: Fleet) -> None:
    created = fleet.admin.create_webhook(
        "http://127.0.0.1:9/none",
        [WebhookEvent.VERSION_REGISTERED, WebhookEvent.PROMOTION_REQUESTED],
    )
    (v3,) = fleet.admin.create_versions(
        [VersionCreate(model="turbofan-rul", version="3.0", metrics={"rmse": 13.0})]
    )
    fleet.admin.promote(fleet.v2, "fd001", policy="gate-auto@1")
    rows = fleet.admin.list_webhook_deliveries(created.id).items
    assert [r.event_type for r in rows] == ["version.registered", "promotion.requested"]
    assert all(r.status == "pending" and r.log == [] for r in rows)
    with fleet.app.state.session_factory() as session:
        payloads = [
            d.payload
            for d in webhooks_service.list_deliveries(session=session, webhook_id=created.id)
        ]
    assert payloads[0]["data"]["version_id"] == v3.id
    assert payloads[1]["data"]["plant_id"] == "fd001"
