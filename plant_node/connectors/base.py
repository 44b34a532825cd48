"""What every connector shares: its status, a bounded scoring queue, and the scoring worker."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from plant_node.connectors.flows import Answer, LineFlows
from plant_node.connectors.readings import Reading, Rejected
from plant_node.db import utcnow

# Scored bursts awaiting their log commit at once (the log writer joins them in one commit).
COMMITS_IN_FLIGHT = 8
log = logging.getLogger("millwright.node.connectors")
# Lags kept for the status percentiles (the histogram on /metrics keeps all of them).
LAG_SAMPLES = 2048


@dataclass
class ConnectorStatus:
    """What ``GET /v1/connectors`` shows of one connector."""

    line: str
    kind: str
    peer: str
    state: str = "starting"  # starting | connected | reconnecting | stopped
    connected_since: datetime | None = None
    reconnects: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "received": 0,
            "predicted": 0,
            "quarantined": 0,
            "dropped_readings": 0,
            "dropped_answers": 0,
            "published": 0,
        }  # fmt: skip
    )
    last_error: str | None = None
    last_error_at: datetime | None = None
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=LAG_SAMPLES))

    def error(self, message: str) -> None:
        """Record the latest error."""
        self.last_error, self.last_error_at = message[:500], utcnow()

    def to_dict(self, queued: int, pending: int) -> dict[str, Any]:
        """JSON form, with lag percentiles over the recent answers (ms)."""
        lags = sorted(self.lags)

        def pct(q: float) -> float | None:
            return round(lags[min(len(lags) - 1, int(q * len(lags)))] * 1000, 3) if lags else None

        return {
            "line": self.line,
            "connector": self.kind,
            "peer": self.peer,
            "state": self.state,
            "connected_since": self.connected_since,
            "reconnects": self.reconnects,
            "counts": dict(self.counts),
            "queued": queued,
            "pending_answers": pending,
            "lag_ms": {
                "last": pct(1.0) if not lags else round(self.lags[-1] * 1000, 3),
                "p50": pct(0.5),
                "p99": pct(0.99),
            },  # fmt: skip
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


def backoff_delays(initial_s: float, max_s: float) -> Any:
    """Yield ``initial_s``, doubling up to ``max_s``, each with up to 20% jitter."""
    delay = initial_s
    while True:
        yield delay * (1 + 0.2 * random.random())
        delay = min(delay * 2, max_s)


class Connector(ABC):
    """One peer (broker or server) of one line.

    Subclasses implement :meth:`_session` (connect, receive, deliver until the connection
    drops) and :meth:`deliver`; this class runs the reconnect loop, the bounded queue of
    readings and the worker that scores them in batches.
    """

    kind = "connector"

    def __init__(self, flows: LineFlows, peer: str) -> None:
        self.flows = flows
        self.line = flows.mapping.line
        self.buffer = flows.mapping.buffer
        self.status = ConnectorStatus(self.line, self.kind, peer)
        self._queue: asyncio.Queue[Reading] | None = None
        # Scored bursts waiting for their log commit, in order: (answers, commits, readings).
        self._committing: asyncio.Queue[tuple[list[Answer], list[Future[None]], int]] | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Every connector of the line gets its answers (a PLC read over OPC UA may have its
        # predictions published on MQTT too); the runner sets this, alone by default.
        self.siblings: list[Connector] = [self]
        m = flows.metrics
        self._m_connected = m.connected.labels(self.line, self.kind)
        self._m_queued = m.queued.labels(self.line, self.kind)
        self._m_pending = m.pending.labels(self.line, self.kind)
        self._m_lag = m.lag.labels(self.line, self.kind)
        self._m_dropped_reading = m.dropped.labels(self.line, self.kind, "reading")
        self._m_dropped_answer = m.dropped.labels(self.line, self.kind, "answer")
        self._m_readings_dropped = m.readings.labels(self.line, self.kind, "dropped")

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the connection loop, the scoring worker and the publisher of committed answers."""
        self._queue = asyncio.Queue(maxsize=self.buffer.max_queue)
        self._committing = asyncio.Queue(maxsize=COMMITS_IN_FLIGHT)
        self._tasks = [
            asyncio.create_task(self._connection_loop(), name=f"{self.kind}-{self.line}"),
            asyncio.create_task(self._worker(), name=f"{self.kind}-{self.line}-worker"),
            asyncio.create_task(self._committed(), name=f"{self.kind}-{self.line}-commit"),
        ]

    async def stop(self) -> None:
        """Score what is queued, then close the connection."""
        self._stop.set()
        if self._queue is not None:
            try:
                await asyncio.wait_for(self._queue.join(), timeout=5.0)
            except TimeoutError:
                pass
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.status.state = "stopped"
        self._m_connected.set(0)

    def snapshot(self) -> dict[str, Any]:
        """Return the connector's status as JSON."""
        queued = self._queue.qsize() if self._queue is not None else 0
        self.status.counts["quarantined"] = self.flows.quarantined_by.get(self.kind, 0)
        return self.status.to_dict(queued, self.pending_answers())

    # -- receiving --------------------------------------------------------------------------

    def offer(self, reading: Reading) -> None:
        """Queue a reading for scoring; when the queue is full it is dropped and counted."""
        self.status.counts["received"] += 1
        assert self._queue is not None
        try:
            self._queue.put_nowait(reading)
        except asyncio.QueueFull:
            self.status.counts["dropped_readings"] += 1
            self._m_dropped_reading.inc()
            self._m_readings_dropped.inc()
            self.flows.alert(
                "connector_backpressure",
                f"{self.kind} readings arrive faster than the node scores them; the queue of "
                f"{self.buffer.max_queue} is full and new readings are dropped "
                f"({self.status.counts['dropped_readings']} so far)",
                connector=self.kind,
            )
            return
        self._m_queued.set(self._queue.qsize())

    def reject(self, rejected: Rejected, raw: dict[str, Any]) -> None:
        """Quarantine a message that could not become a reading (never raises)."""
        self.status.counts["received"] += 1
        self.status.error(f"{rejected.reason}: {rejected.message}")
        self.flows.quarantine(self.kind, rejected, raw)

    async def _worker(self) -> None:
        """Score bursts: every reading queued at that moment (up to ``max_batch``) in one call.

        The worker does not wait for the log commit of a burst: it hands the burst to
        :meth:`_committed` and scores the next one, so the log writer commits several bursts
        in one transaction while the event loop keeps receiving. ``linger_ms`` waits that long
        for more readings after the first of a burst (bigger bursts, a little more latency).
        """
        assert self._queue is not None and self._committing is not None
        queue, committing = self._queue, self._committing
        linger_s = self.buffer.linger_ms / 1000
        while True:
            batch = [await queue.get()]
            deadline = time.monotonic() + linger_s
            while len(batch) < self.buffer.max_batch:
                try:
                    batch.append(queue.get_nowait())
                except asyncio.QueueEmpty:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(queue.get(), left))
                    except TimeoutError:
                        break
            commits: list[Future[None]] = []
            try:
                answers = self.flows.score(self.kind, batch, commits)
            except Exception as exc:
                log.exception("%s/%s: scoring failed", self.line, self.kind)
                self.status.error(f"scoring failed: {type(exc).__name__}: {exc}")
                answers, commits = [], []
            await committing.put((answers, commits, len(batch)))
            self._m_queued.set(queue.qsize())
            await asyncio.sleep(0)  # let the receivers run between batches

    async def _committed(self) -> None:
        """Publish each scored burst, in order, once its prediction log rows are committed.

        A burst whose commit failed is not published (its prediction ids would not be in the
        log): it is counted as a scoring error, as a 503 would be over HTTP.
        """
        assert self._queue is not None and self._committing is not None
        queue, committing = self._queue, self._committing
        while True:
            answers, commits, n = await committing.get()
            try:
                for commit in commits:
                    await asyncio.wrap_future(commit)
                self.status.counts["predicted"] += len(answers)
                if answers:
                    for connector in self.siblings:
                        connector.deliver(answers)
            except Exception as exc:
                log.exception("%s/%s: the prediction log commit failed", self.line, self.kind)
                self.status.error(f"log commit failed: {type(exc).__name__}: {exc}")
            finally:
                for _ in range(n):
                    queue.task_done()
                committing.task_done()

    def record_lag(self, answer: Answer) -> None:
        """Note the time from the reading's arrival to its answer reaching the peer."""
        lag = time.monotonic() - answer.reading.received
        self.status.lags.append(lag)
        self._m_lag.observe(lag)

    # -- connection -------------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        cfg = self.backoff()
        delays = backoff_delays(cfg[0], cfg[1])
        first = True
        while not self._stop.is_set():
            try:
                await self._session(first)
                delays = backoff_delays(cfg[0], cfg[1])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.status.error(f"{type(exc).__name__}: {exc}")
                log.warning("%s/%s: connection lost or refused: %s", self.line, self.kind, exc)
            if self.status.state == "connected":
                first = False
            self.status.state = "reconnecting"
            self.status.connected_since = None
            self._m_connected.set(0)
            if self._stop.is_set():
                break
            await asyncio.sleep(next(delays))

    def mark_connected(self, reconnect: bool) -> None:
        """Record a (re-)established connection."""
        self.status.state = "connected"
        self.status.connected_since = utcnow()
        self._m_connected.set(1)
        if reconnect:
            self.status.reconnects += 1
            self.flows.metrics.reconnects.labels(self.line, self.kind).inc()

    @abstractmethod
    def backoff(self) -> tuple[float, float]:
        """Return the initial and maximum reconnect delay (s)."""

    @abstractmethod
    async def _session(self, first: bool) -> None:
        """Connect, subscribe and serve until the connection drops (raise) or stop is set."""

    @abstractmethod
    def deliver(self, answers: list[Answer]) -> None:
        """Hand answers to the peer (buffered while it is away)."""

    @abstractmethod
    def pending_answers(self) -> int:
        """Answers waiting for the peer."""
