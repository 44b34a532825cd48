"""The webhook sender: one thread in the hub process that drains the delivery outbox.

Each due delivery is posted with the Standard Webhooks signature headers and a short
timeout; the attempt is recorded in its own transaction. A crash between the POST and the
record leaves the row pending, so it is sent again with the same ``webhook-id`` (at least
once; receivers de-duplicate on the id).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import httpx
from sqlalchemy.orm import Session

from hub.config import HubSettings
from hub.db import begin_write, utcnow
from hub.webhooks import service
from hub.webhooks.models import WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)


class WebhookSender:
    """Deliver due webhook rows until stopped.

    Parameters
    ----------
    settings
        Hub settings (poll period, timeout, backoff, attempts).
    session_factory
        Makes the sender's own sessions.
    """

    def __init__(self, *, settings: HubSettings, session_factory: Callable[[], Session]) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._http = httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)

    def start(self) -> None:
        """Start the sender thread."""
        self._thread = threading.Thread(target=self._loop, name="webhook-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current delivery."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._http.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # never let the thread die; the next tick retries
                log.exception("webhook sender tick failed")
            self._stop.wait(self.settings.webhook_poll_seconds)

    def tick(self) -> int:
        """Attempt every due delivery once; return how many were attempted."""
        with self.session_factory() as session:
            ids = service.due_deliveries(session=session, now=utcnow())
        for delivery_id in ids:
            if self._stop.is_set():
                break
            self._deliver(delivery_id)
        return len(ids)

    def _deliver(self, delivery_id: int) -> None:
        with self.session_factory() as session:
            delivery = session.get(WebhookDelivery, delivery_id)
            if delivery is None or delivery.status != service.PENDING:
                return
            sub = session.get(WebhookSubscription, delivery.subscription_id)
            if sub is None:
                return
            body = service.body_of(delivery)
            now = utcnow()
            headers = service.signed_headers(
                secret=service.signing_secrets(sub, now=now),
                message_id=delivery.message_id,
                body=body,
                at=now,
            )
            url = sub.url
            session.rollback()  # no transaction open while the receiver takes its time
            started = time.perf_counter()
            code: int | None = None
            error = ""
            try:
                response = self._http.post(url, content=body, headers=headers)
                code = response.status_code
                if code >= 300:
                    error = response.text[:200]
            except httpx.HTTPError as exc:
                error = f"{exc.__class__.__name__}: {exc}"
            latency = (time.perf_counter() - started) * 1000.0
            begin_write(session)
            delivery = session.get(WebhookDelivery, delivery_id)
            if delivery is None:
                return
            service.record_attempt(
                session=session,
                delivery=delivery,
                status_code=code,
                error=error,
                latency_ms=latency,
                backoff_s=self.settings.webhook_backoff_seconds,
                max_attempts=self.settings.webhook_max_attempts,
            )
