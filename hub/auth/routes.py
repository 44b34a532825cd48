"""HTTP routes of authentication: the caller, user accounts and token administration."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from federation.schemas.auth import Role
from hub.auth import service
from hub.auth.permissions import ALL_ROLES, Allow
from hub.auth.schemas import (
    Principal,
    TokenCreate,
    TokenCreated,
    TokenPage,
    TokenRead,
    UserCreate,
    UserPage,
    UserRead,
)
from hub.config import API_PREFIX
from hub.deps import ActorDep, IdPath, PrincipalCacheDep, PrincipalDep, SessionDep

router = APIRouter(prefix=API_PREFIX, tags=["auth"])
ManageTokens = Depends(Allow(Role.ADMIN))
ManageUsers = Depends(Allow(Role.ADMIN))
AnyRole = Depends(Allow(*ALL_ROLES))


@router.get("/whoami", response_model=Principal, dependencies=[AnyRole])
def whoami(principal: PrincipalDep) -> Principal:
    """Return the role (and plant) of the calling token."""
    return principal


@router.post("/tokens", response_model=TokenCreated, status_code=201, dependencies=[ManageTokens])
def create_token(token_in: TokenCreate, session: SessionDep, actor: ActorDep) -> TokenCreated:
    """Mint a token; the secret is in the response once and never again."""
    return service.create_token(session=session, token_in=token_in, actor=actor)


@router.get("/tokens", response_model=TokenPage, dependencies=[ManageTokens])
def list_tokens(session: SessionDep) -> TokenPage:
    """Every token's metadata (never the secrets)."""
    return TokenPage(
        items=[TokenRead.model_validate(t) for t in service.list_tokens(session=session)]
    )


@router.delete("/tokens/{token_id}", response_model=TokenRead, dependencies=[ManageTokens])
def revoke_token(
    token_id: IdPath, session: SessionDep, cache: PrincipalCacheDep, actor: ActorDep
) -> object:
    """Revoke a token; it stops working immediately (the last admin token cannot be)."""
    revoked = service.revoke_token(session=session, token_id=token_id, actor=actor)
    cache.clear()
    return revoked


@router.post("/users", response_model=UserRead, status_code=201, dependencies=[ManageUsers])
def create_user(user_in: UserCreate, session: SessionDep, actor: ActorDep) -> object:
    """Add a user account; its signing secret is set by the person, with the CLI."""
    return service.create_user(session=session, user_in=user_in, actor=actor)


@router.get("/users", response_model=UserPage, dependencies=[ManageUsers])
def list_users(session: SessionDep) -> UserPage:
    """Every user account (never a secret or its hash)."""
    return UserPage(items=[UserRead.model_validate(u) for u in service.list_users(session=session)])
