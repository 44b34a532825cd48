"""Token minting, lookup and revocation; secrets are hashed before they touch the database."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.errors import NotFound, Unauthenticated
from federation.schemas.auth import Principal, Role, TokenCreate, TokenCreated, TokenRead
from hub.auth.models import ApiToken
from hub.db import commit_or_conflict, utcnow
from hub.registry import service as registry_service

TOKEN_PREFIX = "mw_"
# Compared against when the token is unknown, so a miss costs the same as a hit.
_DUMMY_HASH = hashlib.sha256(b"millwright-dummy-token").hexdigest()


def hash_token(token: str) -> str:
    """Return the sha256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(*, session: Session, token_in: TokenCreate, actor: str) -> TokenCreated:
    """Mint a token, store only its hash, and return the secret once.

    Raises
    ------
    NotFound
        When a plant token names a plant that is not enrolled.
    """
    if token_in.plant_id is not None:
        registry_service.get_plant_or_raise(session=session, plant_id=token_in.plant_id)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        token_hash=hash_token(secret),
        prefix=secret[:10],
        role=token_in.role.value,
        plant_id=token_in.plant_id,
        name=token_in.name,
        created_by=actor,
    )
    session.add(row)
    commit_or_conflict(session, detail="could not store the token; retry")
    return TokenCreated(**TokenRead.model_validate(row).model_dump(), token=secret)


def list_tokens(*, session: Session) -> list[ApiToken]:
    """Every token, newest first (metadata only)."""
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id.desc())))


def revoke_token(*, session: Session, token_id: int) -> ApiToken:
    """Revoke a token; revoking twice is harmless.

    Raises
    ------
    NotFound
        When no token has this id.
    """
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"token {token_id} does not exist; list tokens to find its id.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()
    return row


def authenticate(*, session: Session, token: str | None) -> Principal:
    """Resolve a bearer token to the principal it stands for.

    Raises
    ------
    Unauthenticated
        When the token is missing, unknown or revoked.
    """
    if not token:
        raise Unauthenticated(
            "This endpoint needs a bearer token: send 'Authorization: Bearer <token>' "
            "(create one with `millwright hub create-token`)."
        )
    digest = hash_token(token)
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    hmac.compare_digest(digest, row.token_hash if row else _DUMMY_HASH)
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("The bearer token is unknown or revoked; ask an admin for a new one.")
    return Principal(token_id=row.id, role=Role(row.role), plant_id=row.plant_id, name=row.name)


def actor_name(principal: Principal) -> str:
    """How a principal is recorded in ``created_by`` columns."""
    label = principal.name or f"token-{principal.token_id}"
    return f"{principal.role.value}:{label}"


class PrincipalCache:
    """Short-lived in-process memo of token hash -> principal.

    Saves a database round trip (and a thread-pool hop) on every request. Entries live
    ``ttl`` seconds; revoking through this hub clears the cache at once, so only a
    revocation made by another process takes up to ``ttl`` to apply.

    Parameters
    ----------
    ttl
        Seconds an entry stays valid; 0 disables caching.
    max_entries
        Entries kept before the cache is emptied.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, token: str) -> Principal | None:
        """Return the cached principal of ``token`` if still fresh."""
        if self.ttl <= 0:
            return None
        entry = self._entries.get(hash_token(token))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token: str, principal: Principal) -> None:
        """Remember the principal of ``token`` for ``ttl`` seconds."""
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[hash_token(token)] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        """Forget every entry (after a revocation)."""
        self._entries.clear()


def principal_for_token_id(*, session: Session, token_id: int) -> Principal:
    """Return the principal of a token by id (a dashboard session refers to its token).

    Raises
    ------
    Unauthenticated
        When the token does not exist or was revoked since the session began.
    """
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("The token this session was opened with is unknown or revoked.")
    return Principal(token_id=row.id, role=Role(row.role), plant_id=row.plant_id, name=row.name)
