"""Periodic outbox work: forget delivered messages after a retention period."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from plant_node.db import managed_session, utcnow
from plant_node.outbox.models import OutboxItem, OutboxStatus


def prune_delivered(session_factory: sessionmaker[Session], *, retention_days: float) -> int:
    """Delete delivered messages older than the retention; pending and rejected ones stay.

    Parameters
    ----------
    session_factory
        Opens the job's own session.
    retention_days
        Age (by delivery time) after which a delivered message is deleted.

    Returns
    -------
    int
        Rows deleted.
    """
    cutoff = utcnow() - timedelta(days=retention_days)
    with managed_session(session_factory) as session:
        result = session.execute(
            delete(OutboxItem).where(
                OutboxItem.status == OutboxStatus.DELIVERED, OutboxItem.delivered_at < cutoff
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
