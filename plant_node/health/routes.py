"""``/v1/health`` (the process is up) and ``/v1/ready`` (it can do useful work)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from plant_node.deps import StateDep
from plant_node.health import service as health_service
from plant_node.outbox import service as outbox_service

router = APIRouter(tags=["health"])


@router.get("/health")
def health(state: StateDep) -> dict[str, Any]:
    """Liveness: answers as long as the process serves HTTP."""
    return {"status": "ok", "plant_id": state.settings.plant_id}


@router.get("/ready")
def ready(state: StateDep) -> JSONResponse:
    """Readiness: database migrated and every configured baseline able to answer (model or rule)."""
    database = health_service.check_database(state.engine)
    body: dict[str, Any] = {"plant_id": state.settings.plant_id, "database": database}
    ok = bool(database["ok"])
    if database["ok"]:
        with state.session_factory() as session:
            stats = outbox_service.get_stats(session=session)
        body["outbox"] = {
            "pending": stats.pending,
            "delivered": stats.delivered,
            "rejected": stats.rejected,
            "conflict": stats.conflict,
            "oldest_pending_at": stats.oldest_pending_at.isoformat()
            if stats.oldest_pending_at
            else None,
        }
    if state.serving is not None:
        serving = state.serving.readiness()
        body["serving"] = serving
        ok = ok and bool(serving["ok"])
    body["status"] = "ready" if ok else "not_ready"
    return JSONResponse(body, status_code=200 if ok else 503)
