"""APScheduler wiring only: each domain's periodic jobs, registered by name."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from apscheduler.schedulers.background import BackgroundScheduler

from plant_node.config import NodeSettings
from plant_node.deps import NodeState
from plant_node.outbox import jobs as outbox_jobs

log = logging.getLogger("millwright.node.scheduler")

Interval = float | Callable[[NodeSettings], float]


def _monitoring(state: NodeState) -> Any:
    # A child process: nannyml and the frames never load into the serving process.
    from plant_node.monitoring.jobs import run_in_subprocess

    if not state.settings.monitoring_enabled:
        return None
    result = run_in_subprocess(state.settings)
    if state.sender is not None:
        state.sender.wake()  # the run queued metrics reports
    return result


def _follow_hub(state: NodeState) -> bool:
    # Learn alias changes (rollouts, rollbacks) from the hub and report what now serves.
    from federation.errors import MillwrightError
    from plant_node.serving.follow import AssignmentPoller, HubFollower

    follower = state.extras.get("hub_follower")
    if follower is None:
        client = state.extras.get("hub_client")
        if state.serving is None or state.model_source is None or client is None:
            return False
        sender = state.sender
        follower = HubFollower(
            client=cast(AssignmentPoller, client),
            plant_id=state.settings.plant_id,
            serving=state.serving,
            source=state.model_source,
            session_factory=state.session_factory,
            on_queued=sender.wake if sender is not None else None,
        )
        state.extras["hub_follower"] = follower
    assert isinstance(follower, HubFollower)
    try:
        return follower.poll()
    except MillwrightError as exc:  # hub away: the next poll catches up
        log.info("hub poll failed: %s", exc)
        return False


# name -> (seconds between runs, or a function of the settings; job taking the node state)
JOBS: dict[str, tuple[Interval, Callable[[NodeState], Any]]] = {
    "outbox.prune_delivered": (
        3600.0,
        lambda state: outbox_jobs.prune_delivered(
            state.session_factory, retention_days=state.settings.outbox_retention_days
        ),
    ),
    # every monitor_interval_s (the recipe's chunk period, hourly by default)
    "monitoring.run": (lambda settings: settings.monitor_interval_s, _monitoring),
    "serving.follow_hub": (lambda settings: settings.hub_poll_interval_s, _follow_hub),
}


def build_scheduler(state: NodeState) -> BackgroundScheduler:
    """Return a started-later scheduler with every job in :data:`JOBS` registered by name."""
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True})
    for name, (interval, job) in JOBS.items():
        seconds = interval(state.settings) if callable(interval) else interval
        scheduler.add_job(
            job, "interval", seconds=seconds, args=[state], id=name, name=name, max_instances=1
        )
    return scheduler
