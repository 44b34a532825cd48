"""The prediction log's single writer: batched inserts and attribution updates off the request path.

A request hands its log rows to :meth:`PredictionLog.add` and answers; one thread writes every
pending row in one transaction (one ``executemany``), so a burst of requests costs one commit
instead of one each, and the request never waits for SQLite. Explanations computed after the
response go through the same thread (:meth:`PredictionLog.set_attributions`), so an update is
always written after the row it updates, and SQLite sees a single writer.

Semantics
---------
* Read-your-writes: :meth:`flush` returns once everything handed over before the call is
  committed; ``GET /v1/predictions/{id}`` and feedback call it first, so a client that got a
  prediction id can always read it back.
* Backpressure, never loss: the queue is bounded (``max_pending`` operations). When it is full
  the caller writes its own rows inline (the pre-writer behaviour, slower but nothing dropped).
* Clean shutdown (:meth:`stop`, called by the app's lifespan on SIGTERM/SIGINT) drains the
  queue before the thread exits: nothing handed over is lost.
* Crash (SIGKILL, power loss): rows still in the queue are lost, at most the last few
  milliseconds of predictions (the writer commits as soon as it wakes, typically within one
  request's time). The response has already been sent for them; the caller holds its
  prediction ids but the node may have no log row for them. Committed rows survive (SQLite WAL).
  Nothing bound for the hub goes through here: the outbox keeps its own synchronous durability.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session, sessionmaker

from plant_node.db import managed_session, utcnow
from plant_node.serving.models import Prediction

log = logging.getLogger("millwright.node.serving.log")

# Operations written per transaction: bounds how long one commit holds the GIL and the lock.
MAX_BATCH = 512


@dataclass
class _Insert:
    rows: list[dict[str, Any]]


@dataclass
class _Attributions:
    # (prediction id, attributions); ``explained_at`` is stamped when written (= available).
    updates: list[tuple[str, dict[str, Any]]]


@dataclass
class _Barrier:
    done: threading.Event


_Op = _Insert | _Attributions | _Barrier | None

_UPDATE = (
    update(Prediction.__table__)  # type: ignore[arg-type]
    .where(Prediction.__table__.c.id == bindparam("pid"))
    .values(attributions=bindparam("attr"), explained_at=bindparam("at"))
)


def lower_thread_priority(niceness: int) -> None:
    """Raise the calling thread's niceness (Linux: per thread); a no-op where unsupported.

    Only ever lowers priority, which needs no privileges.
    """
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        if niceness > current:
            os.setpriority(os.PRIO_PROCESS, tid, niceness)
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        log.debug("could not lower the priority of thread %s", threading.current_thread().name)


class PredictionLog:
    """Writes prediction log rows and their late attributions from one thread.

    Parameters
    ----------
    session_factory
        Opens the writer's sessions.
    max_pending
        Queued operations before :meth:`add` falls back to writing inline.
    on_written
        Called with the number of rows inserted per transaction (metrics, tests).
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        max_pending: int = 10_000,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        self._factory = session_factory
        self._queue: queue.Queue[_Op] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._on_written = on_written
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """True while the writer thread accepts work."""
        return self._thread is not None

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="prediction-log", daemon=True
                )
                self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Write everything queued, then stop the thread; True if it drained in time."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return True
        self._queue.put(None)  # blocks while full: the writer is draining, so room appears
        thread.join(timeout_s)
        if thread.is_alive():
            log.error("prediction log writer did not drain within %.0f s", timeout_s)
            return False
        return True

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Hand over log rows (``predictions`` columns); written inline if the writer is busy."""
        if not rows:
            return
        if self._thread is not None:
            try:
                self._queue.put_nowait(_Insert(rows))
                return
            except queue.Full:
                log.warning("prediction log queue full; writing %d rows inline", len(rows))
        self._write([_Insert(rows)])

    def set_attributions(self, updates: list[tuple[str, dict[str, Any]]]) -> None:
        """Hand over late attributions; queued behind the rows they update (blocks if full)."""
        if not updates:
            return
        if self._thread is not None:
            self._queue.put(_Attributions(updates))
        else:
            self._write([_Attributions(updates)])

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Block until everything handed over before this call is committed; True if it was."""
        if self._thread is None:
            return True
        barrier = _Barrier(threading.Event())
        try:
            self._queue.put(barrier, timeout=timeout_s)
        except queue.Full:
            return False
        return barrier.done.wait(timeout_s)

    def pending(self) -> int:
        """Operations waiting to be written."""
        return self._queue.qsize()

    # -- the writer ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            ops: list[_Op] = [self._queue.get()]
            while len(ops) < MAX_BATCH:
                try:
                    ops.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            work = [op for op in ops if isinstance(op, _Insert | _Attributions)]
            try:
                self._write(work)
            except Exception:  # a bad batch must not stop the log; retried row by row
                log.exception("prediction log batch failed; writing its operations one by one")
                for item in work:
                    try:
                        self._write([item])
                    except Exception:
                        log.exception("dropping an unwritable prediction log operation")
            for op in ops:
                if isinstance(op, _Barrier):
                    op.done.set()
            if any(op is None for op in ops):
                return

    def _write(self, ops: list[Any]) -> None:
        rows = [r for op in ops if isinstance(op, _Insert) for r in op.rows]
        updates = [u for op in ops if isinstance(op, _Attributions) for u in op.updates]
        if not rows and not updates:
            return
        started = time.perf_counter()
        with managed_session(self._factory) as session:
            if rows:
                session.execute(insert(Prediction), rows)
            if updates:
                at: datetime = utcnow()  # the moment the explanation becomes readable
                session.execute(
                    _UPDATE, [{"pid": pid, "attr": attr, "at": at} for pid, attr in updates]
                )
        log.debug(
            "wrote %d rows, %d explanations in %.1f ms",
            len(rows),
            len(updates),
            (time.perf_counter() - started) * 1000,
        )
        if self._on_written is not None and rows:
            self._on_written(len(rows))
