"""Follow the hub: poll this plant's assignments with ``If-None-Match`` and sync on change.

A hub rollout or rollback only moves the plant's aliases on the hub; the node learns about
it here, without a person. Every ``hub_poll_interval_s`` a thread of the serving process
(:meth:`HubFollower.start`; it swaps that process's runtimes, so it cannot live in the
scheduler process) calls :meth:`HubFollower.poll`: while nothing changed the hub answers
``304`` with no body. When the assignments changed (or on the first poll after a start or a
reconnect, so an offline node catches up) the node syncs every baseline's champion, then
stages what the hub's ``shadow`` and ``challenger`` aliases name:

- ``champion``: the version the node serves (:meth:`ServingFlows.sync_models`);
- ``shadow`` / ``challenger``: the version is fetched into the cache like a champion
  (downloaded, every file's sha256 verified, marked staged so it never becomes the
  champion's fallback) and staged with the node-local rollout as ``shadow`` (scored beside
  the champion, never returned) or ``canary`` (answers its share of the requests), actor
  ``hub``. When both aliases are set, ``challenger`` (the later stage) wins: a node stages
  one challenger per baseline. Moving the same version from shadow to canary keeps its
  record, so its samples count on as the hub's canary criterion expects. When the hub drops
  the alias, points it at another version, or makes the version champion, the challenger
  the follower staged is withdrawn (``rollout.withdrawn``, actor ``hub``; not a refusal,
  the hub asked for it) or replaced;
- a challenger an engineer staged on the node (``POST /v1/rollout``) is never withdrawn or
  replaced by the hub: while it holds the slot the hub's stage waits (reported once per
  pointing as ``rollout.deferred``) and is staged on the first poll after it is gone;
- one attempt per pointing of a staging alias (its version and ``updated_at``, like the
  champion's confirmation): a challenger the node's own guard rolled back
  (``rollout.rolled_back``, which the hub counts against the wave) or that failed to load is
  not staged again until the hub points the alias anew.

It reports, through the outbox:

- ``rollout.serving`` with the registry model and the version it now serves, once per
  pointing of the champion alias: the hub counts it as the node's confirmation (a one-call
  rollback is done when every target plant sent it);
- ``rollout.load_failed`` when the champion, shadow or challenger the hub assigns could not
  be fetched, verified or compiled: the node keeps serving what it had (and the challenger
  it had, if any), and the hub counts the failure against the rollout's wave;
- ``rollout.started`` / ``rollout.withdrawn`` / ``rollout.rolled_back`` from the node-local
  rollout (:class:`plant_node.serving.flows.ServingFlows`) as the staged challenger comes and
  goes;
- ``rollout.stats`` every ``rollout_stats_interval_s`` (:mod:`plant_node.serving.stats`):
  the champion's and the staged challenger's samples, fallbacks, contract violations and
  p99, which the hub's rollout engine checks its abort criteria against: for a hub shadow
  or canary stage they describe the version the hub staged. They are queued by this thread
  after its poll, also while the hub is away (the outbox delivers later).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from federation.errors import Conflict
from federation.schemas.registry import AliasName, Assignment, AssignmentList
from plant_node.config import RolloutMode
from plant_node.db import managed_session, utcnow
from plant_node.serving import service as serving_service
from plant_node.serving import sync
from plant_node.serving.cache import dir_name
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
#: The actor of the node-local rollouts the follower starts and stops.
HUB_ACTOR = "hub"
#: The staging aliases and the node-local mode each stages, the one that wins first.
STAGING: tuple[tuple[AliasName, RolloutMode], ...] = (
    (AliasName.CHALLENGER, RolloutMode.CANARY),
    (AliasName.SHADOW, RolloutMode.SHADOW),
)


@dataclass(frozen=True)
class _Stage:
    """What the hub wants staged on one baseline."""

    alias: AliasName
    mode: RolloutMode
    item: Assignment

    @property
    def version(self) -> str:
        """The version as the node names it (its cache folder)."""
        return dir_name(self.item.version)

    @property
    def pointed(self) -> str:
        """One pointing of the alias: a re-pointing at the same version is a new one."""
        return f"{self.alias.value}:{self.item.version}@{self.item.updated_at.isoformat()}"


class AssignmentPoller(Protocol):
    """The part of ``federation.hub_client.HubClient`` the follower needs."""

    def poll_assignments(
        self, plant_id: str, etag: str | None = None
    ) -> tuple[AssignmentList | None, str | None]:
        """Return ``(None, etag)`` when unchanged, else the assignments and their ETag."""
        ...


class HubFollower:
    """Keep the node's champions and hub-staged challengers equal to the hub's assignments.

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
        #: What the last applied assignments want staged, per baseline.
        self._wanted: dict[str, _Stage] = {}
        #: The version this follower staged per baseline, while it is still the challenger.
        self._staged: dict[str, str] = {}
        #: The staging pointing last attempted per baseline (one attempt per pointing).
        self._attempted: dict[str, str] = {}
        #: The pointing whose wait behind an engineer's challenger was reported.
        self._deferred: dict[str, str] = {}
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
                # nothing changed on the hub, but an engineer's challenger may have gone
                queued = self._stage()
                if queued and self._on_queued is not None:
                    self._on_queued()
                return False
            wanted = {
                baseline: item
                for item in listing.items
                if item.alias is AliasName.CHAMPION
                and item.artifact_digest
                and (baseline := baseline_of(item.model)) in self._serving.runtimes
            }
            self._models.update({baseline: item.model for baseline, item in wanted.items()})
            self._wanted = self._staging_of(listing)
            self._models.update({b: stage.item.model for b, stage in self._wanted.items()})
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
            queued += self._stage()
            self._etag = tag
        if queued and self._on_queued is not None:
            self._on_queued()
        return True

    def _staging_of(self, listing: AssignmentList) -> dict[str, _Stage]:
        """Return the stage each baseline should have: challenger (canary) first, then shadow."""
        out: dict[str, _Stage] = {}
        for alias, mode in STAGING:
            for item in listing.items:
                baseline = baseline_of(item.model)
                if (
                    item.alias is alias
                    and item.artifact_digest
                    and baseline in self._serving.runtimes
                    and baseline not in out
                ):
                    out[baseline] = _Stage(alias, mode, item)
        return out

    def _stage(self) -> int:
        """Bring every baseline's challenger to what the hub wants; return the events queued."""
        queued = 0
        status = self._serving.rollout_status()
        for baseline in sorted(self._serving.runtimes):
            entry = status.get(baseline) or {}
            challenger = entry.get("challenger")
            mine = self._staged.get(baseline)
            if mine is not None and (
                challenger is None
                or challenger["version"] != mine
                or challenger["staged_by"] != HUB_ACTOR
            ):  # the node's guard rolled it back, or an engineer replaced it: not ours now
                del self._staged[baseline]
                mine = None
            stage = self._wanted.get(baseline)
            if stage is not None and stage.version == entry.get("champion"):
                stage = None  # promoted: the champion serves it, nothing is left to stage
            if stage is None:
                if mine is not None:
                    self._withdraw(baseline, mine, "the hub withdrew it")
                continue
            ours = mine == stage.version and challenger is not None
            if ours and challenger is not None and challenger["mode"] == stage.mode.value:
                self._attempted[baseline] = stage.pointed  # staged as wanted already
                continue
            if self._attempted.get(baseline) == stage.pointed:
                continue  # tried once (it failed to load, or the node rolled it back)
            if challenger is not None and mine is None:
                # An engineer's challenger: never withdrawn by the hub; the stage waits.
                if self._deferred.get(baseline) != stage.pointed:
                    self._deferred[baseline] = stage.pointed
                    reason = (
                        f"{stage.alias.value} {stage.item.version} waits: the challenger "
                        f"{challenger['version']} ({challenger['mode']}) staged on the node by "
                        f"{challenger['staged_by']} holds the slot"
                    )
                    log.warning("%s", reason)
                    self._queue(
                        "deferred", baseline, stage.item.model, stage.item.version, reason,
                        {"role": stage.mode.value},
                    )  # fmt: skip
                    queued += 1
                continue
            self._attempted[baseline] = stage.pointed
            if mine is not None and mine != stage.version:
                self._withdraw(
                    baseline, mine, f"its {stage.alias.value} alias now points at "
                    f"{stage.item.version}",
                )  # fmt: skip
            try:
                sync.fetch_into_cache(
                    self._serving.cache,
                    self._source,
                    sync.Assignment(
                        baseline, stage.alias.value, stage.item.model, stage.item.version
                    ),
                    staged=True,
                )
                self._serving.start_rollout(
                    baseline, stage.item.version, stage.mode, actor=HUB_ACTOR, keep_others=True
                )
            except Conflict:
                # An engineer staged a challenger meanwhile: it stays, the stage waits (and
                # is reported as deferred on the next poll).
                self._attempted.pop(baseline, None)
                continue
            except Exception as exc:  # noqa: BLE001 - serving goes on, the hub is told
                reason = (
                    f"could not fetch, verify or compile {stage.item.model} "
                    f"{stage.item.version} to stage as {stage.mode.value}: {exc}; still "
                    f"serving {entry.get('champion') or 'nothing'}"
                )[:1000]
                log.warning("%s", reason)
                self._queue(
                    "load_failed", baseline, stage.item.model, stage.item.version, reason,
                    {"role": stage.mode.value},
                )  # fmt: skip
                queued += 1
                continue
            self._staged[baseline] = stage.version
            self._deferred.pop(baseline, None)
        return queued

    def _withdraw(self, baseline: str, version: str, why: str) -> None:
        self._serving.stop_rollout(
            baseline, reason=f"hub withdrew {version}: {why}", actor=HUB_ACTOR, kind="withdrawn"
        )
        self._staged.pop(baseline, None)

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
