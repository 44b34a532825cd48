"""APScheduler wiring only: each domain's periodic jobs, registered by name, in one process.

The node's scheduler runs in its own process (``millwright node scheduler``), never in a web
worker. Its jobs live in a persistent ``SQLAlchemyJobStore`` in the node's own database
(table ``apscheduler_jobs``, created by the node's migrations), with ``coalesce=True``,
``max_instances=1`` and an explicit ``misfire_grace_time``. Every run goes through the run
ledger (:mod:`plant_node.scheduling.service`): a slot runs at most once, and a slot left
half-done by a killed process runs again on restart if it is still inside the grace.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from threading import Event
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from plant_node.config import NodeSettings
from plant_node.deps import NodeState
from plant_node.outbox import jobs as outbox_jobs
from plant_node.scheduling import service as ledger

log = logging.getLogger("millwright.node.scheduler")

Interval = float | Callable[[NodeSettings], float]


def _monitoring(state: NodeState) -> Any:
    # A child process: nannyml and the frames never load into the scheduler either.
    from plant_node.monitoring.jobs import run_in_subprocess

    if not state.settings.monitoring_enabled:
        return None
    result = run_in_subprocess(state.settings)
    if state.sender is not None:
        state.sender.wake()  # the run queued metrics reports
    return result


def _retraining(state: NodeState) -> Any:
    from plant_node.retraining.flows import evaluate_triggers

    if not state.settings.retraining_enabled:
        return None
    fired = evaluate_triggers(state.settings, state.session_factory)
    if fired and state.sender is not None:
        state.sender.wake()
    return [f.id for f in fired]


# name -> (seconds between runs, or a function of the settings; job taking the node state)
JOBS: dict[str, tuple[Interval, Callable[[NodeState], Any]]] = {
    "outbox.prune_delivered": (
        3600.0,
        lambda state: outbox_jobs.prune_delivered(
            state.session_factory, retention_days=state.settings.outbox_retention_days
        ),
    ),
    # the disk budget: compaction of unsent metrics reports while the hub is unreachable
    "outbox.enforce_budget": (
        lambda settings: settings.outbox_budget_interval_s,
        lambda state: outbox_jobs.enforce_budget(
            state.session_factory, max_bytes=int(state.settings.outbox_max_mb * 1e6)
        ),
    ),
    # every monitor_interval_s (the recipe's chunk period, hourly by default)
    "monitoring.run": (lambda settings: settings.monitor_interval_s, _monitoring),
    # after monitoring has written chunks and alerts: the retraining triggers read them
    "retraining.evaluate": (lambda settings: settings.retraining_interval_s, _retraining),
}

#: The state of the scheduler running in this process (jobs in the store name only a job).
_STATE: NodeState | None = None


def register_job(name: str, interval: Interval, job: Callable[[NodeState], Any]) -> None:
    """Register a job by name (before the scheduler starts); replaces one of the same name."""
    JOBS[name] = (interval, job)


def run_slot(name: str, scheduled_at: datetime) -> Any:
    """Run job ``name`` for the slot ``scheduled_at`` through the ledger (at most once).

    Parameters
    ----------
    name
        A job of :data:`JOBS`.
    scheduled_at
        The time APScheduler scheduled this run for (the slot's key).

    Returns
    -------
    Any
        The job's result, or ``None`` when the slot was already taken.
    """
    state = _STATE
    if state is None:
        raise RuntimeError("the scheduler of this process is not running")
    with state.session_factory() as session:
        if not ledger.claim(session=session, job=name, scheduled_at=scheduled_at):
            log.warning("job %s slot %s already ran; not running it again", name, scheduled_at)
            return None
    try:
        result = JOBS[name][1](state)
    except BaseException as exc:
        with state.session_factory() as session:
            ledger.finish(session=session, job=name, scheduled_at=scheduled_at, error=repr(exc))
        raise
    with state.session_factory() as session:
        ledger.finish(session=session, job=name, scheduled_at=scheduled_at)
    return result


def run_job(name: str) -> None:  # pragma: no cover - the executor calls run_slot instead
    """Stand for each job in the store (its function, by textual reference)."""
    raise RuntimeError(f"job {name} must run through the ledger executor")


def _run_times(job: Job, alias: str, run_times: list[datetime], logger_name: str) -> list[Any]:
    """APScheduler's ``run_job``, with each run going through :func:`run_slot`."""
    events: list[Any] = []
    logger = logging.getLogger(logger_name)
    name = str(job.args[0])
    for run_time in run_times:
        if job.misfire_grace_time is not None:
            late = datetime.now(UTC) - run_time
            if late > timedelta(seconds=job.misfire_grace_time):
                events.append(JobExecutionEvent(EVENT_JOB_MISSED, job.id, alias, run_time))
                logger.warning("job %s run of %s missed by %s", name, run_time, late)
                continue
        try:
            retval = run_slot(name, run_time)
        except BaseException:
            exc, tb = sys.exc_info()[1:]
            events.append(
                JobExecutionEvent(
                    EVENT_JOB_ERROR, job.id, alias, run_time, exception=exc,
                    traceback="".join(traceback.format_tb(tb)),
                )
            )
            logger.exception("job %s failed", name)
            del tb
        else:
            events.append(JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, alias, run_time, retval))
    return events


class LedgerExecutor(ThreadPoolExecutor):  # type: ignore[misc]
    """A thread pool whose runs are claimed in the ledger first (at most once per slot)."""

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        def callback(f: Any) -> None:
            exc = f.exception()
            if exc:
                self._run_job_error(job.id, exc, getattr(exc, "__traceback__", None))
            else:
                self._run_job_success(job.id, f.result())

        f = self._pool.submit(_run_times, job, job._jobstore_alias, run_times, self._logger.name)
        f.add_done_callback(callback)


def _seconds(interval: Interval, settings: NodeSettings) -> float:
    return float(interval(settings) if callable(interval) else interval)


def build_scheduler(state: NodeState) -> BackgroundScheduler:
    """Return a scheduler over the node's persistent job store (not started, no jobs yet)."""
    settings = state.settings
    return BackgroundScheduler(
        timezone="UTC",
        jobstores={"default": SQLAlchemyJobStore(engine=state.engine)},
        executors={"default": LedgerExecutor(max_workers=settings.scheduler_workers)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(settings.scheduler_misfire_grace_s),
        },
    )


def _reconcile(scheduler: BackgroundScheduler, settings: NodeSettings) -> None:
    """Make the store hold exactly the registered jobs, keeping each unchanged job's next run.

    Re-adding a job would restart its interval from now and lose a run that fell due while
    the node was down, so a job whose interval did not change stays as stored.
    """
    for job in scheduler.get_jobs():
        if job.id not in JOBS:
            scheduler.remove_job(job.id)
    for name, (interval, _) in JOBS.items():
        seconds = _seconds(interval, settings)
        stored = scheduler.get_job(name)
        same = (
            stored is not None
            and isinstance(stored.trigger, IntervalTrigger)
            and stored.trigger.interval.total_seconds() == seconds
            and stored.misfire_grace_time == int(settings.scheduler_misfire_grace_s)
        )
        if same:
            continue
        scheduler.add_job(
            "plant_node.scheduler:run_job", "interval", seconds=seconds, args=[name],
            id=name, name=name, replace_existing=True,
        )


def start_scheduler(state: NodeState) -> BackgroundScheduler:
    """Start this process's scheduler: reconcile the jobs, recover interrupted runs, resume.

    Slots a killed predecessor left ``running`` run again here, one after the other, before
    any new run starts (inside the misfire grace only).
    """
    global _STATE
    _STATE = state
    scheduler = build_scheduler(state)
    scheduler.start(paused=True)
    _reconcile(scheduler, state.settings)
    with state.session_factory() as session:
        interrupted = ledger.recover(
            session=session, grace_s=state.settings.scheduler_misfire_grace_s
        )
    for run in interrupted:
        if run.job in JOBS:
            log.warning("re-running %s slot %s (interrupted)", run.job, run.scheduled_at)
            try:
                run_slot(run.job, run.scheduled_at)
            except Exception:
                log.exception("recovered run of %s failed", run.job)
    scheduler.resume()
    return scheduler


def run_scheduler_process(settings: NodeSettings, *, stop: Event | None = None) -> None:
    """Run the node's scheduler process: every registered job until SIGTERM / SIGINT.

    It builds only what jobs need (database, metrics); messages they queue are delivered by
    the serving process's outbox sender.
    """
    import signal

    from plant_node.db import make_engine, make_session_factory
    from plant_node.metrics import NodeMetrics

    settings.ensure_dirs()
    engine = make_engine(
        settings.db_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        synchronous=settings.sqlite_synchronous,
    )
    state = NodeState(
        settings=settings, engine=engine, session_factory=make_session_factory(engine),
        metrics=NodeMetrics(),
    )
    stop = stop or Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    scheduler = start_scheduler(state)
    log.info("scheduler %d running jobs %s", os.getpid(), ", ".join(sorted(JOBS)))
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)
        engine.dispose()
