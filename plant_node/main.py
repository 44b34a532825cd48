"""``create_app(settings)``: the plant node's FastAPI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from federation.hub_client import HubClient
from federation.offline import disable_telemetry
from federation.problem import install_problem_handlers
from plant_node.config import NodeSettings
from plant_node.connectors import runner as connectors_runner
from plant_node.connectors.routes import router as connectors_router
from plant_node.db import make_engine, make_session_factory
from plant_node.deps import NodeState, StateDep
from plant_node.health.routes import router as health_router
from plant_node.metrics import NodeMetrics
from plant_node.monitoring import records as monitoring_records
from plant_node.monitoring.routes import router as monitoring_router
from plant_node.outbox.deliverers import HubClientDeliverer
from plant_node.outbox.sender import OutboxSender
from plant_node.outbox.types import Deliverer, OutboxMessage, RetryPolicy
from plant_node.serving.cache import ModelCache
from plant_node.serving.flows import ServingFlows
from plant_node.serving.hub_source import HubModelSource
from plant_node.serving.pipelines import Pipeline, default_pipelines
from plant_node.serving.routes import router as serving_router

log = logging.getLogger("millwright.node")

metrics_router = APIRouter(tags=["metrics"])


@metrics_router.get("/metrics", include_in_schema=False)
def metrics(state: StateDep) -> Response:
    """Prometheus exposition of the node's own registry."""
    with state.session_factory() as session:
        monitoring_records.refresh_gauges(session=session, metrics=state.metrics)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _hub_client(settings: NodeSettings) -> HubClient:
    token = settings.hub_token.get_secret_value() if settings.hub_token else None
    # The outbox owns retries and backoff, so the client itself does not retry.
    return HubClient(settings.hub_url, token=token, timeout=settings.hub_timeout_s, retries=0)


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
    engine = make_engine(settings.db_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    factory = make_session_factory(engine)
    node_metrics = NodeMetrics()
    state = NodeState(
        settings=settings, engine=engine, session_factory=factory, metrics=node_metrics
    )
    hub = _hub_client(settings)
    state.extras["hub_client"] = hub
    state.model_source = HubModelSource(hub, settings.plant_id)
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
        scheduler = None
        if settings.scheduler_enabled:
            from plant_node.scheduler import build_scheduler

            scheduler = build_scheduler(state)
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            if connectors is not None:
                await connectors.stop()
            if state.serving is not None:
                state.serving.stop()
            if state.sender is not None:
                state.sender.stop()
            hub = state.extras.get("hub_client")
            if isinstance(hub, HubClient):
                hub.close()
            state.engine.dispose()

    app = FastAPI(
        title=f"Millwright plant node {settings.plant_id}",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(health_router, prefix="/v1")
    app.include_router(serving_router, prefix="/v1")
    app.include_router(monitoring_router, prefix="/v1")
    app.include_router(connectors_router, prefix="/v1")
    app.include_router(metrics_router)
    return app
