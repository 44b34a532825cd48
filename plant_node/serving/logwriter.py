"""The prediction log's single writer: group commit, and a request answers only once durable.

A request hands its log rows to :meth:`PredictionLog.add` and gets a future; one thread
writes every row waiting at that moment in one transaction (one ``executemany``, one WAL
fsync), then resolves all their futures. The request awaits its future before it answers,
so a burst of requests still costs one commit (group commit), and no prediction id is ever
given out for a row that is not on disk. Explanations computed after the response go through
the same thread (:meth:`PredictionLog.set_attributions`), so an update is always written
after the row it updates, and SQLite sees a single writer.

Semantics
---------
* Durable acknowledgement: the future resolves after the commit returned. The node's SQLite
  runs in WAL mode with ``synchronous=FULL`` (``plant_node.db``): the WAL is fsynced at every
  commit, so an acknowledged row survives SIGKILL of the node (which WAL with NORMAL would
  too: the data is in the OS page cache) and also an OS crash or power loss (which NORMAL
  would not). A row whose write fails resolves its future with the error: the request
  answers 503, never 200 without a row.
* Read-your-writes follows from the above; :meth:`flush` still waits for queued attribution
  updates (``GET /v1/predictions/{id}`` calls it so a finished explanation is visible).
* Backpressure, never loss: the queue is bounded (``max_pending`` operations). When it is full
  the caller writes its own rows inline (slower, still durable before the answer).
* Clean shutdown (:meth:`stop`, called by the app's lifespan on SIGTERM/SIGINT) drains the
  queue before the thread exits.
* Crash (SIGKILL): rows still queued were never acknowledged (their requests were waiting),
  so the client saw an error or a dropped connection, never a prediction id. Only queued
  explanation updates can be lost; those predictions then read ``attributions: null``.
  Nothing bound for the hub goes through here: the outbox keeps its own synchronous durability.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
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
    # Resolved once the rows are committed (or with the error that kept them out).
    done: Future[None] = field(default_factory=Future)


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

    def add(self, rows: list[dict[str, Any]]) -> Future[None]:
        """Hand over log rows (``predictions`` columns); the future resolves once they are durable.

        Written inline (and returned resolved) when the writer is not running or its queue
        is full. Await it (``asyncio.wrap_future``) before answering the request.
        """
        op = _Insert(rows)
        if not rows:
            op.done.set_result(None)
            return op.done
        if self._thread is not None:
            try:
                self._queue.put_nowait(op)
                return op.done
            except queue.Full:
                log.warning("prediction log queue full; writing %d rows inline", len(rows))
        try:
            self._write([op])
        except Exception as exc:
            op.done.set_exception(exc)
        else:
            op.done.set_result(None)
        return op.done

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
                self._write(work)  # one transaction for every request waiting now
            except Exception:  # a bad batch must not stop the log; retried row by row
                log.exception("prediction log batch failed; writing its operations one by one")
                for item in work:
                    try:
                        self._write([item])
                    except Exception as exc:
                        log.exception("an unwritable prediction log operation was refused")
                        if isinstance(item, _Insert):
                            item.done.set_exception(exc)
            for written in work:
                if isinstance(written, _Insert) and not written.done.done():
                    written.done.set_result(None)
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
