"""Mounts every domain router (each declares its ``/api/v1`` prefix and tag) in one place."""

from fastapi import FastAPI

from hub.audit.routes import router as audit_router
from hub.auth.routes import router as auth_router
from hub.campaigns.routes import router as campaigns_router
from hub.events.routes import router as events_router
from hub.governance.routes import router as governance_router
from hub.health.routes import router as health_router
from hub.metrics.routes import router as metrics_router
from hub.recipes.routes import router as recipes_router
from hub.registry.routes import router as registry_router
from hub.retraining.routes import router as retraining_router
from hub.rollouts.routes import router as rollouts_router
from hub.webhooks.routes import router as webhooks_router

ROUTERS = (
    health_router,
    registry_router,
    recipes_router,
    events_router,
    metrics_router,
    auth_router,
    campaigns_router,
    governance_router,
    audit_router,
    rollouts_router,
    webhooks_router,
    retraining_router,
)


def mount_routers(app: FastAPI) -> None:
    """Include every domain router in ``app``."""
    for router in ROUTERS:
        app.include_router(router)
