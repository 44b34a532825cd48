"""The outbox sender: drains each stream in order, with retries, backoff and idempotency keys.

Delivery happens outside any database transaction: read the head, send it, then record the
outcome. A crash between "sent" and "recorded" makes the next run send the same key again,
which the receiver de-duplicates, so every message arrives exactly once.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from plant_node.db import managed_session, utcnow
from plant_node.outbox import service as outbox_service
from plant_node.outbox.types import (
    AlreadyDelivered,
    Deliverer,
    DeliveryConflict,
    OutboxMessage,
    PermanentDeliveryError,
    RetryPolicy,
)

log = logging.getLogger("millwright.node.outbox")


@dataclass
class DrainReport:
    """What one pass over the outbox did."""

    delivered: int = 0
    failed: int = 0
    rejected: int = 0
    conflicts: int = 0
    blocked_streams: list[str] = field(default_factory=list)


class OutboxSender:
    """Delivers pending outbox messages through a :class:`Deliverer`.

    Parameters
    ----------
    session_factory
        Opens the sender's own short sessions (never a request's).
    deliverer
        Sends one message to the hub.
    policy
        Backoff after a failed attempt.
    rng
        Random source for the jitter (inject a seeded one in tests).
    clock
        Returns the current UTC time.
    on_result
        Optional callback ``(outcome, message)`` for metrics; outcome is ``delivered``,
        ``failed``, ``rejected`` or ``conflict`` (the hub holds the id with other content).
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        deliverer: Deliverer,
        *,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_result: Callable[[str, OutboxMessage], None] | None = None,
    ) -> None:
        self._factory = session_factory
        self._deliverer = deliverer
        self._policy = policy or RetryPolicy()
        self._rng = rng or random.Random()
        self._clock = clock
        self._on_result = on_result
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def _send_one(self, message: OutboxMessage, report: DrainReport) -> bool:
        """Send one head; return True if the stream may continue with its next message."""
        try:
            self._deliverer.deliver(message)
        except AlreadyDelivered:
            pass
        except PermanentDeliveryError as exc:
            with managed_session(self._factory) as session:
                outbox_service.mark_rejected(
                    session=session, idempotency_key=message.idempotency_key, error=str(exc)
                )
            log.error("outbox %s#%d rejected by hub: %s", message.stream, message.seq, exc)
            report.rejected += 1
            self._notify("rejected", message)
            return True
        except DeliveryConflict as exc:
            return self._conflict(message, exc, report)
        except Exception as exc:  # any other failure: keep it, back off, block the stream
            now = self._clock()
            with managed_session(self._factory) as session:
                item = outbox_service.get_item(
                    session=session, idempotency_key=message.idempotency_key
                )
                attempts = (item.attempts if item else 0) + 1
                delay = self._policy.delay(attempts, self._rng)
                outbox_service.mark_failed(
                    session=session,
                    idempotency_key=message.idempotency_key,
                    error=f"{type(exc).__name__}: {exc}",
                    next_attempt_at=now + timedelta(seconds=delay),
                )
            log.warning(
                "outbox %s#%d attempt %d failed (%s); retry in %.2fs",
                message.stream,
                message.seq,
                attempts,
                exc,
                delay,
            )
            report.failed += 1
            report.blocked_streams.append(message.stream)
            self._notify("failed", message)
            return False
        with managed_session(self._factory) as session:
            outbox_service.mark_delivered(
                session=session, idempotency_key=message.idempotency_key, now=self._clock()
            )
        report.delivered += 1
        self._notify("delivered", message)
        return True

    def _conflict(self, message: OutboxMessage, exc: Exception, report: DrainReport) -> bool:
        """Handle a 409: retry with backoff (stream blocked), then park it and alert."""
        report.conflicts += 1
        self._notify("conflict", message)
        now = self._clock()
        error = f"conflict: {exc}"
        with managed_session(self._factory) as session:
            item = outbox_service.get_item(session=session, idempotency_key=message.idempotency_key)
            attempts = (item.attempts if item else 0) + 1
            if attempts >= self._policy.conflict_attempts:
                outbox_service.mark_conflict(
                    session=session, idempotency_key=message.idempotency_key, error=error
                )
            else:
                delay = self._policy.delay(attempts, self._rng)
                outbox_service.mark_failed(
                    session=session,
                    idempotency_key=message.idempotency_key,
                    error=error,
                    next_attempt_at=now + timedelta(seconds=delay),
                )
        if attempts >= self._policy.conflict_attempts:
            log.error(
                "ALERT outbox %s#%d key %s: the hub holds this id with other content after "
                "%d attempts; parked as 'conflict', NOT delivered (%s)",
                message.stream,
                message.seq,
                message.idempotency_key,
                attempts,
                exc,
            )
            return True
        log.warning(
            "outbox %s#%d key %s conflicts with the hub's copy (attempt %d); retrying: %s",
            message.stream,
            message.seq,
            message.idempotency_key,
            attempts,
            exc,
        )
        report.failed += 1
        report.blocked_streams.append(message.stream)
        return False

    def _notify(self, outcome: str, message: OutboxMessage) -> None:
        if self._on_result is not None:
            try:
                self._on_result(outcome, message)
            except Exception:  # metrics must never stop delivery
                log.exception("outbox result callback failed")

    def drain_once(self, max_messages: int = 1000) -> DrainReport:
        """Send every due message, stream by stream, stopping a stream at its first failure.

        Parameters
        ----------
        max_messages
            Upper bound on messages sent in this pass.

        Returns
        -------
        DrainReport
            Counts of what happened.
        """
        report = DrainReport()
        sent = 0
        with managed_session(self._factory) as session:
            heads = outbox_service.list_due_heads(session=session, now=self._clock())
        for head in heads:
            message: OutboxMessage | None = head
            while message is not None and sent < max_messages and not self._stop.is_set():
                sent += 1
                if not self._send_one(message, report):
                    break
                with managed_session(self._factory) as session:
                    nxt = outbox_service.get_head(session=session, stream=message.stream)
                    due = nxt is not None and nxt.next_attempt_at <= self._clock()
                    message = outbox_service.to_message(nxt) if (nxt and due) else None
        return report

    def wake(self) -> None:
        """Ask the background loop to run a pass now (e.g. right after an enqueue)."""
        self._wake.set()

    def run(self, poll_interval_s: float) -> None:
        """Drain until :meth:`stop` is called, waiting ``poll_interval_s`` between idle passes."""
        while not self._stop.is_set():
            try:
                report = self.drain_once()
            except Exception:  # database hiccup: log and try again next tick
                log.exception("outbox pass failed")
                report = DrainReport()
            if report.delivered and not report.failed:
                continue  # more may have arrived while sending
            self._wake.wait(poll_interval_s)
            self._wake.clear()

    def start(self, poll_interval_s: float) -> None:
        """Run :meth:`run` in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, args=(poll_interval_s,), name="outbox-sender", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the background loop and wait for the thread to finish its current message."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
