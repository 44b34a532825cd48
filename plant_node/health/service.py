"""Readiness checks: database reachable and migrated, models or fallbacks able to answer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from plant_node.db import current_revision, head_revision


def check_database(engine: Engine) -> dict[str, Any]:
    """Return whether the database answers and sits at the migration head.

    Parameters
    ----------
    engine
        The node's engine.

    Returns
    -------
    dict[str, Any]
        ``{"ok": bool, "revision": str | None, "head": str | None, "error": str | None}``.
    """
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(engine)
    except Exception as exc:  # any driver error means "not ready"
        return {"ok": False, "revision": None, "head": None, "error": type(exc).__name__}
    head = head_revision()
    return {"ok": revision == head, "revision": revision, "head": head, "error": None}
