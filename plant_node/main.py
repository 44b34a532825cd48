"""``create_app(settings)``: the plant node's FastAPI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from federation.hub_client import HubClient
from federation.offline import disable_telemetry
from federation.problem import install_problem_handlers
from plant_node.auth import service as auth_service
from plant_node.auth.permissions import allow_read
from plant_node.config import NodeSettings
from plant_node.connectors import runner as connectors_runner
from plant_node.connectors.routes import router as connectors_router
from plant_node.db import make_engine, make_session_factory
from plant_node.deps import NodeState, StateDep
from plant_node.health.routes import router as health_router
from plant_node.limits import BodyLimit
from plant_node.metrics import NodeMetrics
from plant_node.monitoring import service as monitoring_service
from plant_node.monitoring.routes import router as monitoring_router
from plant_node.outbox.deliverers import HubClientDeliverer
from plant_node.outbox.sender import OutboxSender
from plant_node.outbox.types import Deliverer, OutboxMessage, RetryPolicy
from plant_node.retraining.routes import router as retraining_router
from plant_node.serving.archive import ArchiveLimits
from plant_node.serving.cache import ModelCache
from plant_node.serving.flows import ServingFlows
from plant_node.serving.follow import HubFollower
from plant_node.serving.hub_source import HubModelSource
from plant_node.serving.pipelines import Pipeline, default_pipelines
from plant_node.serving.routes import router as serving_router

log = logging.getLogger("millwright.node")

metrics_router = APIRouter(tags=["metrics"])


@metrics_router.get("/metrics", include_in_schema=False, dependencies=allow_read)
def metrics(state: StateDep) -> Response:
    """Prometheus exposition of the node's own registry (any node key; scrape with ``monitor``)."""
    with state.session_factory() as session:
        monitoring_service.refresh_gauges(session=session, metrics=state.metrics)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


_PROBLEM = {
    "content": {
        "application/problem+json": {
            "schema": {
                "type": "object",
                "required": ["type", "title", "status", "code"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "instance": {"type": "string"},
                    "code": {"type": "string"},
                    "errors": {"type": "array"},
                },
            }
        }
    }
}
#: What every authenticated route may answer besides its success (RFC 9457 problems).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description, **_PROBLEM}
    for status, description in (
        (401, "No node key, or an unknown or revoked one."),
        (403, "The key's role may not call this route."),
        (404, "Not found."),
        (409, "Conflicts with what the node holds."),
        (413, "The request body is over this route's limit."),
        (422, "Invalid input or a data-contract violation."),
        (503, "Serving is not ready, or the prediction could not be logged."),
    )
}


def _docs_router(app: FastAPI) -> APIRouter:
    """``/openapi.json`` and ``/docs`` behind a node key, like every route but health."""
    router = APIRouter(include_in_schema=False, dependencies=allow_read)

    @router.get("/openapi.json")
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    return router


def _hub_client(settings: NodeSettings) -> HubClient:
    token = settings.hub_token.get_secret_value() if settings.hub_token else None
    # The outbox owns retries and backoff, so the client itself does not retry.
    client_cert = (
        (settings.hub_client_cert, settings.hub_client_key)
        if settings.hub_client_cert is not None and settings.hub_client_key is not None
        else None
    )
    return HubClient(
        settings.hub_url,
        token=token,
        timeout=settings.hub_timeout_s,
        retries=0,
        ca_file=settings.hub_ca_file,
        client_cert=client_cert,
    )


def build_state(
    settings: NodeSettings,
    *,
    deliverer: Deliverer | None = None,
    pipelines: dict[str, Pipeline] | None = None,
) -> NodeState:
    """Build the engine, metrics, outbox sender and serving service for one app.

    Parameters
    ----------
    settings
        The node's settings.
    deliverer
        Where the outbox sends messages; the hub over HTTP by default.
    pipelines
        Baselines to serve; the shipped ones by default.

    Returns
    -------
    NodeState
        State shared by every request of the app.
    """
    settings.ensure_dirs()
    engine = make_engine(
        settings.db_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        synchronous=settings.sqlite_synchronous,
    )
    factory = make_session_factory(engine)
    node_metrics = NodeMetrics()
    state = NodeState(
        settings=settings,
        engine=engine,
        session_factory=factory,
        metrics=node_metrics,
        keys=auth_service.KeyVerifier(engine),
    )
    if settings.bootstrap_keys:
        try:
            with factory() as session:
                added = auth_service.install_bootstrap_keys(
                    session=session, keys=settings.bootstrap_keys
                )
            log.info("bootstrap keys: %d new of %d", added, len(settings.bootstrap_keys))
        except SQLAlchemyError:  # unmigrated: /v1/ready says so, and every key is refused
            log.exception("could not store the bootstrap keys")
    hub = _hub_client(settings)
    state.extras["hub_client"] = hub
    limits = ArchiveLimits(
        max_bytes=settings.artifact_max_bytes,
        max_members=settings.artifact_max_members,
        max_ratio=settings.artifact_max_ratio,
    )
    state.model_source = HubModelSource(hub, settings.plant_id, limits)
    if settings.outbox_enabled:
        if deliverer is None:
            deliverer = HubClientDeliverer(hub, settings.plant_id)

        def _count(outcome: str, message: OutboxMessage) -> None:
            node_metrics.outbox.labels(message.stream, outcome).inc()

        state.sender = OutboxSender(
            factory,
            deliverer,
            policy=RetryPolicy(
                base_delay_s=settings.outbox_base_delay_s, max_delay_s=settings.outbox_max_delay_s
            ),
            on_result=_count,
        )
    sender = state.sender
    state.serving = ServingFlows(
        settings,
        factory,
        node_metrics,
        default_pipelines() if pipelines is None else pipelines,
        ModelCache(settings.cache_path, keep=settings.keep_model_versions),
        on_alert=sender.wake if sender is not None else None,
    )
    return state


def _start_follower(state: NodeState) -> HubFollower | None:
    """Follow the hub's assignments from this (the serving) process, when there is a hub."""
    client = state.extras.get("hub_client")
    if state.serving is None or state.model_source is None or not isinstance(client, HubClient):
        return None
    sender = state.sender
    follower = HubFollower(
        client=client,
        plant_id=state.settings.plant_id,
        serving=state.serving,
        source=state.model_source,
        session_factory=state.session_factory,
        on_queued=sender.wake if sender is not None else None,
        stats_interval_s=state.settings.rollout_stats_interval_s,
        stats_heartbeat_s=state.settings.rollout_stats_heartbeat_s,
    )
    follower.start(state.settings.hub_poll_interval_s)
    return follower


def create_app(
    settings: NodeSettings,
    *,
    deliverer: Deliverer | None = None,
    pipelines: dict[str, Pipeline] | None = None,
) -> FastAPI:
    """Create the node application; the database must already be migrated.

    Parameters
    ----------
    settings
        The node's settings, built once by the entry point (or a test).
    deliverer
        Outbox delivery target; defaults to the hub's events endpoint.
    pipelines
        Baselines to serve; the shipped ones by default.

    Returns
    -------
    FastAPI
        The application, with problem+json handlers, health, readiness and metrics.
    """
    disable_telemetry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = build_state(settings, deliverer=deliverer, pipelines=pipelines)
        app.state.node = state
        if state.serving is not None:
            # Pull assignments from the hub; when it is unreachable the cache serves.
            state.serving.sync_models(state.model_source)
            state.serving.start()
        connectors = connectors_runner.start_in_node(state)
        if state.sender is not None:
            state.sender.start(settings.outbox_poll_interval_s)
        follower = _start_follower(state)
        scheduler = None
        if settings.scheduler_enabled and settings.scheduler_in_serve:
            from plant_node.scheduler import start_scheduler

            scheduler = start_scheduler(state)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            if follower is not None:
                follower.stop()
            if connectors is not None:
                await connectors.stop()
            if state.serving is not None:
                state.serving.stop()
            if state.sender is not None:
                state.sender.stop()
            hub = state.extras.get("hub_client")
            if isinstance(hub, HubClient):
                hub.close()
            if state.keys is not None:
                state.keys.close()
            state.engine.dispose()

    app = FastAPI(
        title=f"Millwright plant node {settings.plant_id}",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,  # served by _docs_router, behind a key
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    app.add_middleware(
        BodyLimit,
        default=settings.max_body_bytes,
        per_path={
            "/v1/predict": settings.max_predict_body_bytes,
            "/v1/predict/batch": settings.max_predict_body_bytes,
        },
    )
    app.include_router(health_router, prefix="/v1")
    app.include_router(serving_router, prefix="/v1", responses=PROBLEM_RESPONSES)
    app.include_router(monitoring_router, prefix="/v1", responses=PROBLEM_RESPONSES)
    app.include_router(connectors_router, prefix="/v1", responses=PROBLEM_RESPONSES)
    app.include_router(retraining_router, prefix="/v1", responses=PROBLEM_RESPONSES)
    app.include_router(metrics_router)
    app.include_router(_docs_router(app))
    return app
