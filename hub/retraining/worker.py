"""The candidate settler: one thread in the hub process that finishes retraining candidates.

Started with the fleet workers (``fleet_worker``). Every tick it takes each request whose
candidate is training and, once its campaign has finished, runs
:func:`hub.retraining.flows.settle_candidate` (validation, then the promotion gate) in its
own session. All state is in the database, so a restarted hub continues where it stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session

from hub.registry.artifacts import ArtifactStore
from hub.retraining import flows, service

log = logging.getLogger(__name__)


class CandidateSettler:
    """Settle finished retraining candidates until stopped.

    Parameters
    ----------
    session_factory
        Makes the worker's own sessions.
    store
        The artifact store (the promotion gate re-hashes the candidate's artifact).
    gate
        The promotion gate, ``id@version``, candidates must pass.
    poll_seconds
        Seconds between ticks.
    """

    def __init__(
        self,
        *,
        session_factory: Callable[[], Session],
        store: ArtifactStore,
        gate: str,
        poll_seconds: float,
    ) -> None:
        self.session_factory = session_factory
        self.store = store
        self.gate = gate
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(
            target=self._loop, name="retraining-settler", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after its current step and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # never let the thread die; the next tick retries
                log.exception("retraining settler tick failed")
            self._stop.wait(self.poll_seconds)

    def tick(self) -> int:
        """Settle every candidate whose campaign finished; return how many were settled."""
        with self.session_factory() as session:
            ids = service.training_requests(session=session)
        settled = 0
        for row_id in ids:
            if self._stop.is_set():
                break
            with self.session_factory() as session:
                outcome = flows.settle_candidate(
                    session=session, store=self.store, row_id=row_id, gate=self.gate
                )
            settled += outcome is not None
        return settled
