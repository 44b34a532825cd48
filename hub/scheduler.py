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
- ``liveness.check_nodes``: plants silent beyond ``node_stale_seconds`` start a stale
  episode (webhook ``node.stale``, once per episode) and end it when heard from again
  (``node.recovered``); every ``node_stale_check_seconds``.
- ``campaigns.recipe.<id>``: a published recipe's scheduled campaign (cron in
  ``hyperparameters.federation.schedule``), registered when the scheduler starts.
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


def check_nodes() -> int:
    """Job: start and end plants' stale episodes; return how many changed."""
    from hub.liveness.service import check_nodes as check

    ctx = _ctx()
    with ctx.sessions() as session:
        changes = check(session=session, stale_after_s=ctx.settings.node_stale_seconds)
    return len(changes.stale) + len(changes.recovered)


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


def recipe_schedules(sessions: sessionmaker[Session]) -> dict[int, dict[str, Any]]:
    """Return each published recipe's ``hyperparameters.federation.schedule``, by recipe id.

    A schedule is ``{cron, model, plants, rounds?, local_epochs?, strategy?}``; recipes
    without one (or with one that is not a mapping with a ``cron``) are left out.
    """
    from hub.recipes.models import Recipe

    out: dict[int, dict[str, Any]] = {}
    with sessions() as session:
        for recipe in session.scalars(select(Recipe).where(Recipe.status == "published")):
            federation = recipe.hyperparameters.get("federation")
            schedule = federation.get("schedule") if isinstance(federation, dict) else None
            if isinstance(schedule, dict) and isinstance(schedule.get("cron"), str):
                out[recipe.id] = schedule
    return out


def scheduled_campaign(recipe_id: int) -> int | None:
    """Job: start the recipe's scheduled campaign from its model's newest exported version.

    Returns the campaign id, or ``None`` when the schedule is gone or no version of the
    model trained with this recipe has an artifact yet (logged, retried at the next firing).
    """
    from federation.errors import MillwrightError
    from federation.schemas.campaigns import CampaignCreate
    from hub.campaigns import service as campaigns_service
    from hub.registry.models import BaselineModel, ModelVersion

    ctx = _ctx()
    schedule = recipe_schedules(ctx.sessions).get(recipe_id)
    if schedule is None:
        return None
    with ctx.sessions() as session:
        parent = session.scalar(
            select(ModelVersion.id)
            .join(BaselineModel, BaselineModel.id == ModelVersion.model_id)
            .where(
                BaselineModel.name == schedule.get("model"),
                ModelVersion.recipe_id == recipe_id,
                ModelVersion.artifact_digest.is_not(None),
                ModelVersion.plant_id.is_(None),
            )
            .order_by(ModelVersion.id.desc())
            .limit(1)
        )
        if parent is None:
            log.warning("recipe %s schedule: no exported version of %s to start from",
                        recipe_id, schedule.get("model"))
            return None
        plants = list(schedule.get("plants") or [])
        try:
            campaign = campaigns_service.create_campaign(
                session=session,
                campaign_in=CampaignCreate(
                    model=schedule["model"], parent_version_id=parent, recipe_id=recipe_id,
                    plants=plants, strategy=schedule.get("strategy", "fedavg"),
                    rounds=int(schedule.get("rounds", ctx.settings.retraining_rounds)),
                    local_epochs=int(schedule.get("local_epochs", 1)),
                    min_participants=int(schedule.get("min_participants", len(plants) or 1)),
                ),
                actor="scheduler",
            )
        except (MillwrightError, ValueError) as err:
            log.warning("recipe %s schedule: campaign not started: %s", recipe_id, err)
            return None
        return campaign.id


def _recipe_job_id(recipe_id: int) -> str:
    return f"campaigns.recipe.{recipe_id}"


def _recipe_jobs(sessions: sessionmaker[Session]) -> dict[str, tuple[Any, int]]:
    """Cron triggers of the recipes' scheduled campaigns, by job id."""
    from apscheduler.triggers.cron import CronTrigger

    jobs: dict[str, tuple[Any, int]] = {}
    for recipe_id, schedule in recipe_schedules(sessions).items():
        try:
            trigger = CronTrigger.from_crontab(schedule["cron"], timezone="UTC")
        except ValueError as err:
            log.warning("recipe %s schedule: bad cron %r: %s", recipe_id, schedule["cron"], err)
            continue
        jobs[_recipe_job_id(recipe_id)] = (trigger, recipe_id)
    return jobs


# name -> (seconds between runs as a function of the settings, the job)
JOBS: dict[str, tuple[Callable[[HubSettings], float], Callable[[], Any]]] = {
    "retraining.settle_candidates": (lambda s: s.rollout_poll_seconds * 5, settle_candidates),
    "idempotency.purge": (lambda s: 3600.0, purge_idempotency_keys),
    "liveness.check_nodes": (lambda s: s.node_stale_check_seconds, check_nodes),
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
        recipes = _recipe_jobs(make_session_factory(engine))
        stale = stored - wanted.keys() - recipes.keys()  # jobs no longer configured
        if stale:
            conn.execute(delete(apscheduler_jobs).where(apscheduler_jobs.c.id.in_(stale)))
    for name, (seconds, job) in wanted.items():
        if name in stored:  # keep its persisted next run time (a restart is not a reset)
            continue
        scheduler.add_job(job, "interval", seconds=seconds, id=name, name=name)
    for name, (trigger, recipe_id) in recipes.items():
        if name not in stored:
            scheduler.add_job(
                scheduled_campaign, trigger, args=[recipe_id], id=name, name=name
            )
    return scheduler
