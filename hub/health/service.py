"""Readiness checks: the database answers and its schema is at the migrations' head."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from federation.schemas.health import Readiness
from hub import migrations


def check_readiness(*, engine: Engine) -> Readiness:
    """Probe the database and compare its revision with the newest migration."""
    head = migrations.head_revision()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = migrations.current_revision(engine)
    except SQLAlchemyError:
        return Readiness(
            status="unavailable", database=False, schema_revision=None, head_revision=head
        )
    ready = current == head
    return Readiness(
        status="ready" if ready else "migrations_pending",
        database=True,
        schema_revision=current,
        head_revision=head,
    )
