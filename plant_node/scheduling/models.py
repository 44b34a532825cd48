"""Scheduler rows: APScheduler's job store table (created by Alembic) and the run ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Column,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from plant_node.db import Base, UTCDateTime

#: APScheduler 3's ``SQLAlchemyJobStore`` table, column for column (it only reads and writes
#: it: ``create(checkfirst=True)`` finds it made by the node's migration).
APSCHEDULER_JOBS = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


class SchedulerRun(Base):
    """One run of a scheduled job, keyed by the job and the time it was scheduled for.

    A run claims its ``(job, scheduled_at)`` slot before it starts, so a restarted scheduler
    that is handed the same slot again sees it taken and does not run it twice.
    """

    __tablename__ = "scheduler_runs"
    __table_args__ = (UniqueConstraint("job", "scheduled_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(100), nullable=False)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # running|ok|failed
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
