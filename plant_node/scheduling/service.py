"""The run ledger: a scheduled slot is claimed before it runs, so it never runs twice.

APScheduler moves a job's ``next_run_time`` in the job store *before* it hands the run to
the executor, so a process killed mid-job loses that run silently, and a job store restored
from an older state would hand the same slot out again. The ledger closes both gaps: each
run claims ``(job, scheduled_at)`` first (a unique key), marks it ``ok`` or ``failed`` at the
end, and a scheduler starting up finds the runs its predecessor left ``running``, marks them
``interrupted`` and runs again those still inside the misfire grace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plant_node.db import utcnow
from plant_node.scheduling.models import APSCHEDULER_JOBS, SchedulerRun

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class RunRead:
    """One ledger row."""

    job: str
    scheduled_at: datetime
    started_at: datetime
    finished_at: datetime | None
    status: str
    pid: int
    error: str | None


@dataclass(frozen=True)
class JobRead:
    """A job in the persistent store: its name and next run (``None``: paused)."""

    name: str
    next_run_at: datetime | None


def _read(row: SchedulerRun) -> RunRead:
    return RunRead(
        row.job, row.scheduled_at, row.started_at, row.finished_at, row.status, row.pid, row.error
    )


def claim(*, session: Session, job: str, scheduled_at: datetime, pid: int | None = None) -> bool:
    """Claim a slot for this process; commits. ``False`` when it ran or is running already.

    An ``interrupted`` slot (its process died mid-run) is taken over, so it completes once.
    """
    pid = os.getpid() if pid is None else pid
    now = utcnow()
    taken: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(SchedulerRun)
        .where(
            SchedulerRun.job == job,
            SchedulerRun.scheduled_at == scheduled_at,
            SchedulerRun.status == "interrupted",
        )
        .values(status="running", pid=pid, started_at=now, error=None)
    )
    if taken.rowcount:
        session.commit()
        return True
    session.add(
        SchedulerRun(job=job, scheduled_at=scheduled_at, started_at=now, status="running", pid=pid)
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def finish(
    *, session: Session, job: str, scheduled_at: datetime, error: str | None = None
) -> None:
    """Mark a claimed slot ``ok`` (or ``failed`` with its error); commits."""
    session.execute(
        update(SchedulerRun)
        .where(SchedulerRun.job == job, SchedulerRun.scheduled_at == scheduled_at)
        .values(
            status="ok" if error is None else "failed",
            finished_at=utcnow(),
            error=None if error is None else error[:MAX_ERROR_CHARS],
        )
    )
    session.commit()


def recover(*, session: Session, grace_s: float, now: datetime | None = None) -> list[RunRead]:
    """At start-up: mark every ``running`` slot ``interrupted``; return those inside the grace.

    Only one scheduler process runs per node, so a slot still ``running`` when it starts was
    left by a process that died. The caller runs the returned slots again (``claim`` takes
    each over); older ones stay ``interrupted``, missed beyond the grace, on the record.
    """
    now = now or utcnow()
    rows = list(
        session.execute(select(SchedulerRun).where(SchedulerRun.status == "running")).scalars()
    )
    for row in rows:
        row.status = "interrupted"
        row.error = f"process {row.pid} ended mid-run"
    session.commit()
    cutoff = now - timedelta(seconds=grace_s)
    return [_read(r) for r in rows if r.scheduled_at >= cutoff]


def list_runs(*, session: Session, job: str | None = None, limit: int = 50) -> list[RunRead]:
    """Return the newest runs, newest first."""
    query = select(SchedulerRun).order_by(SchedulerRun.scheduled_at.desc(), SchedulerRun.id.desc())
    if job is not None:
        query = query.where(SchedulerRun.job == job)
    return [_read(r) for r in session.execute(query.limit(limit)).scalars()]


def count_runs(*, session: Session) -> dict[tuple[str, str], int]:
    """Count the runs by ``(job, status)``."""
    query = select(SchedulerRun.job, SchedulerRun.status, func.count()).group_by(
        SchedulerRun.job, SchedulerRun.status
    )
    return {(str(j), str(s)): int(n) for j, s, n in session.execute(query).all()}


def list_jobs(*, session: Session) -> list[JobRead]:
    """Return the jobs the persistent store holds, by name (read without unpickling them)."""
    from datetime import UTC

    rows = session.execute(
        select(APSCHEDULER_JOBS.c.id, APSCHEDULER_JOBS.c.next_run_time).order_by(
            APSCHEDULER_JOBS.c.id
        )
    ).all()
    return [
        JobRead(str(name), None if ts is None else datetime.fromtimestamp(float(ts), UTC))
        for name, ts in rows
    ]
