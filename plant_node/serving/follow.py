"""Follow the hub: poll this plant's assignments with ``If-None-Match`` and sync on change.

A hub rollout or rollback only moves the plant's aliases on the hub; the node learns about
it here, without a person. Every ``hub_poll_interval_s`` a thread of the serving process
(:meth:`HubFollower.start`; it swaps that process's runtimes, so it cannot live in the
scheduler process) calls :meth:`HubFollower.poll`: while nothing changed the hub answers
``304`` with no body. When the assignments changed (or on the first poll after a start or a
reconnect, so an offline node catches up) the node syncs every baseline's champion and
reports, through the outbox:

- ``rollout.serving`` with the registry model and the version it now serves, once per
  pointing of the champion alias: the hub counts it as the node's confirmation (a one-call
  rollback is done when every target plant sent it);
- ``rollout.load_failed`` when the champion the hub assigns could not be fetched, verified
  or compiled: the node keeps serving what it had, and the hub counts the failure against
  the rollout's wave;
- ``rollout.stats`` every ``rollout_stats_interval_s`` (:mod:`plant_node.serving.stats`):
  the champion's and the staged challenger's samples, fallbacks, contract violations and
  p99, which the hub's rollout engine checks its abort criteria against. They are queued
  by this thread after its poll, also while the hub is away (the outbox delivers later).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from federation.schemas.registry import AliasName, AssignmentList
from plant_node.db import managed_session, utcnow
from plant_node.serving import service as serving_service
from plant_node.serving.flows import ServingFlows
from plant_node.serving.hub_source import baseline_of
from plant_node.serving.stats import RolloutStatsReporter
from plant_node.serving.sync import ModelSource

log = logging.getLogger("millwright.node.follow")


def _node_version() -> str:
    try:
        return package_version("millwright")
    except PackageNotFoundError:  # a source checkout without an install
        return "0+unknown"


#: The node's software version, reported with every serving confirmation.
NODE_VERSION = _node_version()


class AssignmentPoller(Protocol):
    """The part of ``federation.hub_client.HubClient`` the follower needs."""

    def poll_assignments(
        self, plant_id: str, etag: str | None = None
    ) -> tuple[AssignmentList | None, str | None]:
        """Return ``(None, etag)`` when unchanged, else the assignments and their ETag."""
        ...


class HubFollower:
    """Keep the node's champions equal to the hub's assignments.

    Parameters
    ----------
    client
        Conditional fetch of the assignments.
    plant_id
        This node's plant.
    serving
        The serving flows whose runtimes are synced.
    source
        Where artifacts come from (the hub).
    session_factory
        The node database (the outbox).
    on_queued
        Called after an event was queued (wakes the outbox sender).
    stats_interval_s
        Seconds between ``rollout.stats`` reports; ``0`` (the default) sends none.
    stats_heartbeat_s
        An unchanged report is still sent after this long.
    """

    def __init__(
        self,
        *,
        client: AssignmentPoller,
        plant_id: str,
        serving: ServingFlows,
        source: ModelSource,
        session_factory: sessionmaker[Session],
        on_queued: Callable[[], None] | None = None,
        stats_interval_s: float = 0.0,
        stats_heartbeat_s: float = 300.0,
    ) -> None:
        self._client = client
        self._plant_id = plant_id
        self._serving = serving
        self._source = source
        self._factory = session_factory
        self._on_queued = on_queued
        self._etag: str | None = None
        self._reported: dict[str, str] = {}
        #: Registry model of each baseline, from the assignments (names the stats' model).
        self._models: dict[str, str] = {}
        self.stats = RolloutStatsReporter(
            serving=serving,
            plant_id=plant_id,
            session_factory=session_factory,
            interval_s=stats_interval_s,
            heartbeat_s=stats_heartbeat_s,
            model_of=self._models.get,
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, interval_s: float) -> None:
        """Poll every ``interval_s`` until :meth:`stop`; a failed poll is retried next time."""
        from federation.errors import MillwrightError

        while not self._stop.is_set():
            try:
                self.poll()
            except MillwrightError as exc:  # hub away: the next poll catches up
                log.info("hub poll failed: %s", exc)
            except Exception:  # noqa: BLE001 - the loop must outlive one bad poll
                log.exception("hub poll failed")
            self.report_stats()
            self._stop.wait(interval_s)

    def report_stats(self) -> int:
        """Queue the due ``rollout.stats`` (never raises: serving goes on); return how many."""
        try:
            queued = self.stats.report()
        except Exception:  # noqa: BLE001 - a stats round must never stop the follower
            log.exception("rollout stats not queued")
            return 0
        if queued and self._on_queued is not None:
            self._on_queued()
        return queued

    def start(self, interval_s: float) -> None:
        """Run :meth:`run` in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, args=(interval_s,), name="hub-follower", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the loop and wait for a poll in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    @property
    def etag(self) -> str | None:
        """The ETag of the assignments last applied."""
        return self._etag

    def poll(self) -> bool:
        """Poll once; return whether the assignments changed (and were applied).

        Raises
        ------
        federation.errors.Unavailable
            When the hub cannot be reached (the next poll retries).
        """
        with self._lock:
            listing, tag = self._client.poll_assignments(self._plant_id, self._etag)
            if listing is None:
                return False
            wanted = {
                baseline: item
                for item in listing.items
                if item.alias is AliasName.CHAMPION
                and item.artifact_digest
                and (baseline := baseline_of(item.model)) in self._serving.runtimes
            }
            self._models.update({baseline: item.model for baseline, item in wanted.items()})
            self._serving.sync_models(self._source)
            queued = 0
            for baseline, item in sorted(wanted.items()):
                current = self._serving.runtimes[baseline].current
                serving = None if current is None else current.version
                # Each pointing of the alias (a rollback re-points it) is confirmed once.
                pointed = f"{item.version}@{item.updated_at.isoformat()}"
                if serving == item.version:
                    if self._reported.get(baseline) != pointed:
                        extra = {
                            "precision": None if current is None else current.manifest.precision
                        }
                        self._queue("serving", baseline, item.model, item.version, None, extra)
                        self._reported[baseline] = pointed
                        queued += 1
                    continue
                self._reported.pop(baseline, None)
                reason = (
                    f"could not fetch, verify or compile {item.model} {item.version}; "
                    f"still serving {serving or 'nothing'}"
                )
                log.warning("%s", reason)
                self._queue("load_failed", baseline, item.model, item.version, reason)
                queued += 1
            self._etag = tag
        if queued and self._on_queued is not None:
            self._on_queued()
        return True

    def _queue(
        self,
        kind: str,
        baseline: str,
        model: str,
        version: str,
        reason: str | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        with managed_session(self._factory) as session:
            serving_service.enqueue_rollout_event(
                session=session,
                kind=kind,
                payload={
                    "plant_id": self._plant_id,
                    "baseline": baseline,
                    "model": model,
                    "model_version": version,
                    "reason": reason,
                    "stats": {},
                    "actor": "node",
                    "node_version": NODE_VERSION,
                    "at": utcnow().isoformat(),
                    **(extra or {}),
                },
            )
