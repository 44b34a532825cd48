"""APScheduler wiring only: each domain's periodic jobs, registered by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from plant_node.config import NodeSettings
from plant_node.deps import NodeState
from plant_node.outbox import jobs as outbox_jobs

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
