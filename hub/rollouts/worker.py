"""The rollout engine: one thread in the hub process that advances running rollouts.

Started by the app lifespan (``fleet_worker``). Every tick it advances each running
rollout by one step (:func:`hub.rollouts.flows.advance`) in its own session. All state is
in the database, so a new worker (a restarted hub) continues every rollout where it stood.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session

from hub.registry.artifacts import ArtifactStore
from hub.rollouts import flows, service

log = logging.getLogger(__name__)


class RolloutWorker:
    """Advance running rollouts until stopped.

    Parameters
    ----------
    session_factory
        Makes the worker's own sessions.
    store
        The artifact store (the champion step re-hashes the artifact for its gate).
    poll_seconds
        Seconds between ticks.
    """

    def __init__(
        self, *, session_factory: Callable[[], Session], store: ArtifactStore, poll_seconds: float
    ) -> None:
        self.session_factory = session_factory
        self.store = store
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the engine thread."""
        self._thread = threading.Thread(target=self._loop, name="rollout-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after its current step and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # never let the thread die; the next tick retries
                log.exception("rollout engine tick failed")
            self._stop.wait(self.poll_seconds)

    def tick(self) -> int:
        """Advance every running rollout by one step; return how many changed."""
        with self.session_factory() as session:
            ids = service.active_rollout_ids(session=session)
        changed = 0
        for rollout_id in ids:
            if self._stop.is_set():
                break
            with self.session_factory() as session:
                try:
                    changed += flows.advance(
                        session=session, store=self.store, rollout_id=rollout_id
                    )
                except Exception as err:
                    session.rollback()
                    log.warning("rollout %s step failed: %s", rollout_id, err)
        return changed
