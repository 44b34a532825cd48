"""Request dependencies as ``Annotated`` aliases: settings, session, principal, idempotency.

Dependencies that do no blocking I/O are ``async`` so they run on the event loop: every
sync dependency costs a thread-pool hop, and a request should pay for at most two (the
token lookup and the route itself).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from federation.schemas.auth import Principal
from federation.schemas.common import MAX_DB_ID
from hub.auth import service as auth_service
from hub.config import HubSettings
from hub.idempotency.service import IdempotencyKey
from hub.registry.artifacts import ArtifactStore

#: A row id in the path: 1..MAX_DB_ID, so a larger one is 422 (not a driver overflow, 500).
IdPath = Annotated[int, Path(ge=1, le=MAX_DB_ID)]
#: An optional row id filter in the query string, bounded the same way.
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_DB_ID)]


async def get_settings(request: Request) -> HubSettings:
    """Return the settings the app was created with."""
    settings: HubSettings = request.app.state.settings
    return settings


_READS = frozenset({"GET", "HEAD"})


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request; services commit, this only closes (never commits).

    GET and HEAD requests never write, so they get the read factory (autocommit on
    PostgreSQL: no BEGIN/ROLLBACK round trips).
    """
    state = request.app.state
    factory = (
        state.read_session_factory if request.method in _READS else state.request_session_factory
    )
    session: Session = factory()
    try:
        yield session
    finally:
        session.close()


async def get_artifact_store(request: Request) -> ArtifactStore:
    """Return the artifact store the app was created with."""
    store: ArtifactStore = request.app.state.artifact_store
    return store


SettingsDep = Annotated[HubSettings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ArtifactStoreDep = Annotated[ArtifactStore, Depends(get_artifact_store)]


async def get_principal(
    request: Request,
    session: SessionDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """Resolve ``Authorization: Bearer <token>`` to a principal (401 when absent or invalid)."""
    token = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip()
    cache: auth_service.PrincipalCache = request.app.state.principal_cache
    if token and (cached := cache.get(token)) is not None:
        return cached
    principal = await run_in_threadpool(auth_service.authenticate, session=session, token=token)
    cache.put(token or "", principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_actor(principal: PrincipalDep) -> str:
    """How the caller is recorded in ``created_by``."""
    return auth_service.actor_name(principal)


ActorDep = Annotated[str, Depends(get_actor)]


async def get_idempotency_key(
    request: Request,
    principal: PrincipalDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Makes a create safe to retry: the same key replays the first result.",
        ),
    ] = None,
) -> IdempotencyKey | None:
    """Return the ``Idempotency-Key`` header, scoped to the calling token."""
    if not idempotency_key:
        return None
    settings: HubSettings = request.app.state.settings
    return IdempotencyKey(
        key=idempotency_key,
        actor=str(principal.token_id),
        ttl=dt.timedelta(hours=settings.idempotency_ttl_hours),
    )


IdempotencyDep = Annotated[IdempotencyKey | None, Depends(get_idempotency_key)]


async def page_size_query(request: Request, page_size: int | None = None) -> int:
    """Return the requested page size clamped to the configured maximum."""
    from hub.pagination import clamp_page_size

    settings: HubSettings = request.app.state.settings
    return clamp_page_size(
        page_size, default=settings.default_page_size, maximum=settings.max_page_size
    )


PageSizeDep = Annotated[int, Depends(page_size_query)]


async def get_principal_cache(request: Request) -> auth_service.PrincipalCache:
    """Return the app's token cache (cleared on revocation)."""
    cache: auth_service.PrincipalCache = request.app.state.principal_cache
    return cache


PrincipalCacheDep = Annotated[auth_service.PrincipalCache, Depends(get_principal_cache)]
