"""APScheduler wiring only: each domain's periodic jobs, registered by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from plant_node.deps import NodeState
from plant_node.outbox import jobs as outbox_jobs

# name -> (seconds between runs, job taking the node state)
JOBS: dict[str, tuple[float, Callable[[NodeState], Any]]] = {
    "outbox.prune_delivered": (
        3600.0,
        lambda state: outbox_jobs.prune_delivered(
            state.session_factory, retention_days=state.settings.outbox_retention_days
        ),
    ),
}


def build_scheduler(state: NodeState) -> BackgroundScheduler:
    """Return a started-later scheduler with every job in :data:`JOBS` registered by name."""
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True})
    for name, (seconds, job) in JOBS.items():
        scheduler.add_job(
            job, "interval", seconds=seconds, args=[state], id=name, name=name, max_instances=1
        )
    return scheduler
