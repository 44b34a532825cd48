"""The hub's sealer thread: chains entries written to ``audit_pending`` soon after commit.

Only PostgreSQL has pending entries (see :func:`hub.audit.service.append`). A commit that
wrote some wakes the thread; it also looks every ``interval`` seconds, for entries that
other processes (the CLI, a second hub) wrote. Reads of the chain seal first anyway, so
the thread only keeps the window in which an entry is written but not chained short.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from hub.audit import service

log = logging.getLogger(__name__)


class Sealer:
    """A daemon thread that calls :func:`hub.audit.service.seal` when nudged.

    Parameters
    ----------
    engine_of
        Returns the engine to seal on (read at each pass, so a rebound engine is followed).
    interval
        Seconds between passes when nothing nudges it.
    """

    def __init__(self, engine_of: Callable[[], Engine], interval: float = 1.0) -> None:
        self._engine_of = engine_of
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, factory: sessionmaker[Session]) -> None:
        """Nudge the sealer after each commit of ``factory``'s sessions that wrote entries."""
        event.listen(factory, "after_commit", self._after_commit)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(service.PENDING_WRITTEN, False):
            self._wake.set()

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Seal once more and stop the thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            # Stopping: this pass starts after the last commit that nudged, so it is the last.
            last = self._stopping.is_set()
            try:
                service.seal(bind=self._engine_of())
            except Exception as exc:  # noqa: BLE001 - the next pass retries; readers seal too
                log.warning("sealing the audit trail failed (retried): %s", exc)
            if last:
                return
