"""Application factory of the hub: routers, problem+json handlers, observability, lifespan."""

from __future__ import annotations

import datetime as dt
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from federation.offline import disable_telemetry
from federation.problem import install_problem_handlers
from hub.api import mount_routers
from hub.audit.sealer import Sealer
from hub.auth.service import PrincipalCache
from hub.config import HubSettings
from hub.db import (
    make_engine,
    make_read_session_factory,
    make_request_session_factory,
    make_session_factory,
)
from hub.deps import PrincipalDep
from hub.idempotency.service import purge_expired
from hub.limits import RequestLimitsMiddleware
from hub.observability import ObservabilityMiddleware, RequestMetrics, configure_logging
from hub.registry.artifacts import LocalArtifactStore
from hub.ui.routes import mount_ui

log = logging.getLogger("millwright.hub")


def _purge_expired_idempotency_keys(app: FastAPI, settings: HubSettings) -> None:
    """Drop expired keys at start-up; an unmigrated database is /readyz's to report, not ours."""
    ttl = dt.timedelta(hours=settings.idempotency_ttl_hours)
    try:
        with app.state.session_factory() as session:
            purged = purge_expired(session=session, ttl=ttl)
    except SQLAlchemyError as exc:
        log.warning("idempotency keys not purged: %s", exc.__class__.__name__)
        return
    if purged:
        log.info("purged %d expired idempotency keys", purged)


def _start_fleet_workers(app: FastAPI, settings: HubSettings) -> list[Any]:
    """Start the rollout engine and the webhook sender (sessions from the app's factory)."""
    from hub.rollouts.worker import RolloutWorker
    from hub.webhooks.worker import WebhookSender

    def sessions() -> Any:
        return app.state.session_factory()

    workers: list[Any] = [
        RolloutWorker(
            session_factory=sessions,
            store=app.state.artifact_store,
            poll_seconds=settings.rollout_poll_seconds,
        ),
        WebhookSender(settings=settings, session_factory=sessions),
    ]
    for fleet_worker in workers:
        fleet_worker.start()
    return workers


def create_app(settings: HubSettings) -> FastAPI:
    """Build the hub application for ``settings``.

    The engine is created in the lifespan (and disposed at shutdown); nothing touches the
    schema, which only ``millwright hub db upgrade`` changes.

    Parameters
    ----------
    settings
        The hub's settings; reachable in handlers through ``SettingsDep``.

    Returns
    -------
    FastAPI
        The application.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        app.state.engine = engine
        app.state.session_factory = make_session_factory(engine)
        app.state.read_session_factory = make_read_session_factory(engine)
        app.state.request_session_factory = make_request_session_factory(engine)
        app.state.artifact_store = LocalArtifactStore(settings.artifact_root)
        sealer = None
        if engine.dialect.name == "postgresql":
            sealer = app.state.audit_sealer = Sealer(lambda: app.state.engine)
            for factory in (app.state.session_factory, app.state.request_session_factory):
                sealer.attach(factory)
            sealer.start()
        worker = None
        if settings.campaign_superlink and not settings.campaigns_in_scheduler:
            from hub.campaigns.worker import CampaignWorker

            worker = CampaignWorker(
                settings=settings,
                session_factory=app.state.session_factory,
                store=app.state.artifact_store,
            )
            worker.start()
        fleet = _start_fleet_workers(app, settings) if settings.fleet_worker else []
        _purge_expired_idempotency_keys(app, settings)
        # Startup objects (routes, schemas, validators) never die: keep them out of the
        # collector's way so full collections stay short under load.
        gc.freeze()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            for fleet_worker in fleet:
                fleet_worker.stop()
            if sealer is not None:
                sealer.stop()
            engine.dispose()

    public_docs = settings.public_docs
    app = FastAPI(
        title="Millwright hub",
        version="0.1.0",
        summary="Model registry, recipes and plant reports for manufacturers that run many plants.",
        lifespan=lifespan,
        openapi_url="/openapi.json" if public_docs else None,
        docs_url="/docs" if public_docs else None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = RequestMetrics()
    app.state.principal_cache = PrincipalCache(settings.auth_cache_seconds)
    install_problem_handlers(app)
    mount_routers(app)
    if not public_docs:
        _mount_private_openapi(app)
    app.add_middleware(RequestLimitsMiddleware, settings=settings)
    mount_ui(app, settings)
    app.add_middleware(
        ObservabilityMiddleware, metrics=app.state.metrics, access_log_enabled=settings.access_log
    )
    return app


def _mount_private_openapi(app: FastAPI) -> None:
    """Serve ``/openapi.json`` to any valid token only (the route map is not public)."""

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(principal: PrincipalDep) -> JSONResponse:
        return JSONResponse(app.openapi())


def app_from_env() -> FastAPI:
    """Build the app from environment settings (``uvicorn --factory hub.main:app_from_env``)."""
    disable_telemetry()
    settings = HubSettings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)
