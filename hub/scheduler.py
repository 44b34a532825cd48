"""The hub's scheduler: periodic jobs in one process, persisted in the hub database.

APScheduler 3.x with a :class:`~apscheduler.jobstores.sqlalchemy.SQLAlchemyJobStore` on
the hub database (its ``apscheduler_jobs`` table is created by Alembic, like every other
table), ``coalesce=True``, ``max_instances=1`` and an explicit ``misfire_grace_time`` in
``job_defaults``. Run it with ``millwright hub scheduler``, as one process beside the web
workers and never inside one. Jobs are registered by name with ``replace_existing``, so a
restarted scheduler keeps each job's next run time instead of adding a second copy; runs
missed while it was down are coalesced into one run if within the grace, skipped beyond it.

Jobs (the scheduler pickles only a reference to a module-level function, no arguments):

- ``retraining.settle_candidates``: finished retraining campaigns through validation and
  the promotion gate (:class:`hub.retraining.worker.CandidateSettler`).
- ``idempotency.purge``: drop expired idempotency keys (also done once at hub start-up).
- ``campaigns.advance``: with ``campaigns_in_scheduler`` (and a SuperLink), the campaign
  worker's steps, instead of its thread in the web process.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import Column, Float, LargeBinary, Table, Unicode, delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.config import HubSettings
from hub.db import Base, make_engine, make_session_factory

log = logging.getLogger("millwright.hub.scheduler")

JOBS_TABLE = "apscheduler_jobs"
#: The job store's table as APScheduler 3.x defines it; declared here so Alembic owns it.
apscheduler_jobs = Table(
    JOBS_TABLE,
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
#: A run later than this after its due time is skipped (the next one comes anyway).
MISFIRE_GRACE_S = 300
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_S}


@dataclasses.dataclass
class _Context:
    settings: HubSettings
    engine: Engine
    sessions: sessionmaker[Session]


_context: _Context | None = None
_lock = threading.Lock()


def _ctx() -> _Context:
    if _context is None:
        raise RuntimeError("the hub scheduler's jobs run only inside build_scheduler()'s process")
    return _context


def settle_candidates() -> int:
    """Job: settle every retraining candidate whose campaign finished; return how many."""
    from hub.registry.artifacts import LocalArtifactStore
    from hub.retraining.worker import CandidateSettler

    ctx = _ctx()
    return CandidateSettler(
        session_factory=ctx.sessions,
        store=LocalArtifactStore(ctx.settings.artifact_root),
        gate=ctx.settings.retraining_gate,
        poll_seconds=ctx.settings.rollout_poll_seconds,
    ).tick()


def purge_idempotency_keys() -> int:
    """Job: delete idempotency keys older than their time to live; return how many."""
    from hub.idempotency.service import purge_expired

    ctx = _ctx()
    with ctx.sessions() as session:
        return purge_expired(
            session=session, ttl=dt.timedelta(hours=ctx.settings.idempotency_ttl_hours)
        )


_campaign_worker: Any = None


def advance_campaigns() -> int:
    """Job: advance every active campaign by one step (the campaign worker's tick).

    One :class:`~hub.campaigns.worker.CampaignWorker` lives for the scheduler process, so
    its SuperLink client and per-campaign error counts last between runs; ``max_instances=1``
    keeps two ticks from overlapping.
    """
    global _campaign_worker
    from hub.campaigns import service as campaigns_service
    from hub.campaigns.worker import CampaignWorker
    from hub.registry.artifacts import LocalArtifactStore

    ctx = _ctx()
    with ctx.sessions() as session:
        active = len(campaigns_service.active_campaign_ids(session=session))
    if not active:
        return 0
    with _lock:
        if _campaign_worker is None:
            _campaign_worker = CampaignWorker(
                settings=ctx.settings, session_factory=ctx.sessions,
                store=LocalArtifactStore(ctx.settings.artifact_root),
            )
    _campaign_worker.tick()
    return active


# name -> (seconds between runs as a function of the settings, the job)
JOBS: dict[str, tuple[Callable[[HubSettings], float], Callable[[], Any]]] = {
    "retraining.settle_candidates": (lambda s: s.rollout_poll_seconds * 5, settle_candidates),
    "idempotency.purge": (lambda s: 3600.0, purge_idempotency_keys),
}


def jobs_for(settings: HubSettings) -> dict[str, tuple[float, Callable[[], Any]]]:
    """Return the jobs this hub's scheduler runs, by name, with their periods in seconds."""
    jobs = {name: (interval(settings), job) for name, (interval, job) in JOBS.items()}
    if settings.campaigns_in_scheduler and settings.campaign_superlink:
        jobs["campaigns.advance"] = (settings.campaign_poll_seconds, advance_campaigns)
    return jobs


def build_scheduler(
    settings: HubSettings, *, scheduler_class: type[BaseScheduler] = BlockingScheduler
) -> BaseScheduler:
    """Return a not-yet-started scheduler with every job of :data:`JOBS` registered by name.

    Parameters
    ----------
    settings
        The hub's settings (its database holds the job store).
    scheduler_class
        ``BlockingScheduler`` for ``millwright hub scheduler``; tests pass a background one.
    """
    global _context
    engine = make_engine(settings)
    with _lock:
        _context = _Context(settings=settings, engine=engine, sessions=make_session_factory(engine))
    scheduler = scheduler_class(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
        job_defaults=dict(JOB_DEFAULTS),
        timezone="UTC",
    )
    wanted = jobs_for(settings)
    with engine.begin() as conn:
        stored = set(conn.execute(select(apscheduler_jobs.c.id)).scalars())
        stale = stored - wanted.keys()  # jobs this configuration no longer runs
        if stale:
            conn.execute(delete(apscheduler_jobs).where(apscheduler_jobs.c.id.in_(stale)))
    for name, (seconds, job) in wanted.items():
        if name in stored:  # keep its persisted next run time (a restart is not a reset)
            continue
        scheduler.add_job(job, "interval", seconds=seconds, id=name, name=name)
    return scheduler
