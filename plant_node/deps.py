"""FastAPI dependencies of the node, as ``Annotated`` aliases routes put in their signatures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from plant_node.auth import service as auth_service
from plant_node.auth.schemas import NodePrincipal
from plant_node.config import NodeSettings
from plant_node.metrics import NodeMetrics

if TYPE_CHECKING:
    from plant_node.outbox.sender import OutboxSender
    from plant_node.serving.flows import ServingFlows
    from plant_node.serving.sync import ModelSource


@dataclass
class NodeState:
    """What the lifespan builds once and every request shares."""

    settings: NodeSettings
    engine: Engine
    session_factory: sessionmaker[Session]
    metrics: NodeMetrics
    sender: OutboxSender | None = None
    serving: ServingFlows | None = None
    # Where model sync pulls assignments and artifacts from (the hub); None serves the cache only.
    model_source: ModelSource | None = None
    # The request path's key check (cached verified keys); None checks with a session per call.
    keys: auth_service.KeyVerifier | None = None
    extras: dict[str, object] = field(default_factory=dict)


async def get_state(request: Request) -> NodeState:
    """Return the node state stored on the app by its lifespan.

    ``async`` so FastAPI calls it in the event loop: a sync dependency costs every request
    a hop to the thread pool and back.
    """
    state: NodeState = request.app.state.node
    return state


def get_session(state: Annotated[NodeState, Depends(get_state)]) -> Iterator[Session]:
    """Yield one session per request; services commit, this only closes (rolling back leftovers)."""
    session = state.session_factory()
    try:
        yield session
    finally:
        session.close()


def get_settings(state: Annotated[NodeState, Depends(get_state)]) -> NodeSettings:
    """Return the node's settings."""
    return state.settings


StateDep = Annotated[NodeState, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[NodeSettings, Depends(get_settings)]


# Declares the bearer scheme in the OpenAPI document; a missing key is our own 401 problem.
_bearer = HTTPBearer(auto_error=False, scheme_name="nodeKey", description="A node key.")


async def get_principal(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> NodePrincipal:
    """Resolve ``Authorization: Bearer <key>`` to a principal (401 when absent or invalid).

    Checked on every request, on the event loop (no thread-pool hop): a key already verified
    costs one primary-key read of its ``revoked_at`` (``auth_service.KeyVerifier``), so a key
    revoked from the CLI is refused from the next request on.
    """
    key = credentials.credentials.strip() if credentials is not None else None
    if state.keys is not None:
        return state.keys.authenticate(key)
    with state.session_factory() as session:
        return auth_service.authenticate(session=session, key=key)


PrincipalDep = Annotated[NodePrincipal, Depends(get_principal)]
