"""HTTP routes of authentication: the caller, and token administration."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from federation.schemas.auth import Role
from hub.auth import service
from hub.auth.permissions import ALL_ROLES, Allow
from hub.auth.schemas import Principal, TokenCreate, TokenCreated, TokenPage, TokenRead
from hub.config import API_PREFIX
from hub.deps import ActorDep, IdPath, PrincipalCacheDep, PrincipalDep, SessionDep

router = APIRouter(prefix=API_PREFIX, tags=["auth"])
ManageTokens = Depends(Allow(Role.ADMIN))
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
def revoke_token(token_id: IdPath, session: SessionDep, cache: PrincipalCacheDep) -> object:
    """Revoke a token; it stops working immediately."""
    revoked = service.revoke_token(session=session, token_id=token_id)
    cache.clear()
    return revoked
