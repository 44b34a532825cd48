"""Request dependencies as ``Annotated`` aliases: settings, session, principal, idempotency."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from federation.schemas.auth import Principal
from hub.auth import service as auth_service
from hub.config import HubSettings
from hub.idempotency.service import IdempotencyKey
from hub.registry.artifacts import ArtifactStore


def get_settings(request: Request) -> HubSettings:
    """The settings the app was created with."""
    settings: HubSettings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; services commit, this only closes (never commits)."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        session.close()


def get_artifact_store(request: Request) -> ArtifactStore:
    """The artifact store the app was created with."""
    store: ArtifactStore = request.app.state.artifact_store
    return store


SettingsDep = Annotated[HubSettings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ArtifactStoreDep = Annotated[ArtifactStore, Depends(get_artifact_store)]


def get_principal(
    session: SessionDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """Resolve ``Authorization: Bearer <token>`` to a principal (401 when absent or invalid)."""
    token = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip()
    return auth_service.authenticate(session=session, token=token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_actor(principal: PrincipalDep) -> str:
    """How the caller is recorded in ``created_by``."""
    return auth_service.actor_name(principal)


ActorDep = Annotated[str, Depends(get_actor)]


def get_idempotency_key(
    principal: PrincipalDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Makes a create safe to retry: the same key replays the first result.",
        ),
    ] = None,
) -> IdempotencyKey | None:
    """The ``Idempotency-Key`` header, scoped to the calling token."""
    if not idempotency_key:
        return None
    return IdempotencyKey(key=idempotency_key, actor=str(principal.token_id))


IdempotencyDep = Annotated[IdempotencyKey | None, Depends(get_idempotency_key)]


def page_size_query(request: Request, page_size: int | None = None) -> int:
    """Requested page size clamped to the configured maximum."""
    from hub.pagination import clamp_page_size

    settings = get_settings(request)
    return clamp_page_size(
        page_size, default=settings.default_page_size, maximum=settings.max_page_size
    )


PageSizeDep = Annotated[int, Depends(page_size_query)]
