"""Users, signing secrets, and token minting, lookup and revocation.

Secrets are hashed before they touch the database: tokens with sha256 (they are long and
random), signing secrets with argon2 (people choose them, so the hash must be slow).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.errors import Conflict, ErrorCode, InvalidInput, NotFound, Unauthenticated
from federation.schemas.auth import (
    Principal,
    Role,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
)
from hub.audit import service as audit_service
from hub.audit.chain import format_time as chain_time
from hub.auth.models import ApiToken, User
from hub.db import commit_or_conflict, utcnow
from hub.registry import service as registry_service

TOKEN_PREFIX = "mw_"
# Compared against when the token is unknown, so a miss costs the same as a hit.
_DUMMY_HASH = hashlib.sha256(b"millwright-dummy-token").hexdigest()
#: Bounds of a signing secret (characters).
MIN_SECRET_LENGTH = 8
MAX_SECRET_LENGTH = 1024
# argon2id at OWASP's recommended minimum (19 MiB, 2 passes): ~20 ms a hash on one core.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when a user has no secret, so "no secret" costs as much as "wrong secret".
_DUMMY_SECRET_HASH = _HASHER.hash("millwright-dummy-signing-secret")


# ---------------------------------------------------------------- users


def get_user(*, session: Session, user_id: int) -> User | None:
    """Return the user with this id, or None."""
    return session.get(User, user_id)


def get_user_or_raise(*, session: Session, user_id: int) -> User:
    """Return the user with this id.

    Raises
    ------
    NotFound
        When no user has this id.
    """
    user = get_user(session=session, user_id=user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist; list users to find its id.")
    return user


def get_user_by_username(*, session: Session, username: str) -> User | None:
    """Return the user with this username, or None."""
    return session.scalars(select(User).where(User.username == username)).first()


def get_user_by_username_or_raise(*, session: Session, username: str) -> User:
    """Return the user with this username.

    Raises
    ------
    NotFound
        When no user has this username.
    """
    user = get_user_by_username(session=session, username=username)
    if user is None:
        raise NotFound(f"user '{username}' does not exist; create it with `hub create-user`.")
    return user


def _add_user(*, session: Session, user_in: UserCreate, actor: str) -> User:
    if user_in.plant_id is not None:
        registry_service.get_plant_or_raise(session=session, plant_id=user_in.plant_id)
    if get_user_by_username(session=session, username=user_in.username) is not None:
        raise Conflict(f"user '{user_in.username}' already exists.", code=ErrorCode.ALREADY_EXISTS)
    user = User(
        username=user_in.username,
        printed_name=user_in.printed_name,
        role=user_in.role.value,
        plant_id=user_in.plant_id,
        created_by=actor,
    )
    session.add(user)
    session.flush()
    return user


def create_user(*, session: Session, user_in: UserCreate, actor: str) -> User:
    """Add a user account (no signing secret yet).

    Raises
    ------
    Conflict
        ``already_exists`` when the username is taken.
    NotFound
        When a plant user names a plant that is not enrolled.
    """
    user = _add_user(session=session, user_in=user_in, actor=actor)
    audit_service.append(
        session=session,
        actor=actor,
        action="user.create",
        subject=f"user/{user.id}",
        after={
            "username": user.username,
            "printed_name": user.printed_name,
            "role": user.role,
            "plant_id": user.plant_id,
        },
    )
    commit_or_conflict(session, detail=f"user '{user_in.username}' was created concurrently")
    return user


def list_users(*, session: Session) -> list[User]:
    """Every user, by id."""
    return list(session.scalars(select(User).order_by(User.id)))


def set_signing_secret(*, session: Session, user_id: int, secret: str) -> User:
    """Set (or replace) a user's signing secret; only its argon2 hash is stored.

    Raises
    ------
    NotFound
        When no user has this id.
    InvalidInput
        When the secret is shorter than 8 or longer than 1024 characters.
    """
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        raise InvalidInput(
            f"A signing secret has {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters."
        )
    user = get_user_or_raise(session=session, user_id=user_id)
    user.signing_secret_hash = _HASHER.hash(secret)
    session.commit()
    return user


def verify_signing_secret(*, session: Session, user_id: int, secret: str) -> bool:
    """Tell whether ``secret`` is the user's signing secret (False when none is set).

    Costs one argon2 verification whether or not the user exists or has a secret.
    """
    user = get_user(session=session, user_id=user_id)
    stored = user.signing_secret_hash if user is not None else None
    try:
        ok = _HASHER.verify(stored or _DUMMY_SECRET_HASH, secret[:MAX_SECRET_LENGTH])
    except (VerificationError, InvalidHashError):
        return False
    return ok and stored is not None


# ---------------------------------------------------------------- tokens


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
    if token_in.username is not None:
        user = get_user_by_username_or_raise(session=session, username=token_in.username)
        if (user.role, user.plant_id) != (token_in.role.value, token_in.plant_id):
            raise InvalidInput(
                f"user '{user.username}' has role '{user.role}'"
                + (f" at plant '{user.plant_id}'" if user.plant_id else "")
                + "; a token has its user's role and plant."
            )
    else:  # a service user of its own, renamed after the token once the token has an id
        user = _add_user(
            session=session,
            user_in=UserCreate(
                username=f"pending-{uuid.uuid4().hex[:16]}",
                # a blank name would fail the printed name's min length (a 500 the fuzzer found)
                printed_name=token_in.name.strip() or "token",
                role=token_in.role,
                plant_id=token_in.plant_id,
            ),
            actor=actor,
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        token_hash=hash_token(secret),
        prefix=secret[:10],
        role=token_in.role.value,
        plant_id=token_in.plant_id,
        name=token_in.name,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    if token_in.username is None:
        user.username = f"token-{row.id}"
        user.printed_name = token_in.name or f"token {row.id}"
    audit_service.append(
        session=session,
        actor=actor,
        action="token.create",
        subject=f"token/{row.id}",
        after={
            "user_id": user.id,
            "username": user.username,
            "role": row.role,
            "plant_id": row.plant_id,
            "name": row.name,
            "prefix": row.prefix,
        },
    )
    commit_or_conflict(session, detail="could not store the token; retry")
    return TokenCreated(**TokenRead.model_validate(row).model_dump(), token=secret)


def list_tokens(*, session: Session) -> list[ApiToken]:
    """Every token, newest first (metadata only)."""
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id.desc())))


def revoke_token(*, session: Session, token_id: int, actor: str = "system") -> ApiToken:
    """Revoke a token; revoking twice is harmless.

    The last active admin token cannot be revoked: the hub would have no administrator
    left on its API (mint another admin token first).

    Raises
    ------
    NotFound
        When no token has this id.
    Conflict
        ``last_admin_token`` when this is the only active admin token.
    """
    row = session.get(ApiToken, token_id, with_for_update=True)
    if row is None:
        raise NotFound(f"token {token_id} does not exist; list tokens to find its id.")
    if row.revoked_at is not None:
        return row
    if row.role == Role.ADMIN.value:
        # Lock every active admin token: two concurrent revocations of the last two
        # cannot both see the other one as still active.
        active = session.scalars(
            select(ApiToken.id)
            .where(ApiToken.role == Role.ADMIN.value, ApiToken.revoked_at.is_(None))
            .with_for_update()
        ).all()
        if set(active) <= {token_id}:
            raise Conflict(
                f"token {token_id} is the last active admin token; mint another admin token "
                "before revoking it.",
                code=ErrorCode.LAST_ADMIN_TOKEN,
            )
    row.revoked_at = utcnow()
    audit_service.append(
        session=session,
        actor=actor,
        action="token.revoke",
        subject=f"token/{row.id}",
        before={"revoked_at": None},
        after={"revoked_at": chain_time(row.revoked_at)},
    )
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
    found = session.execute(
        select(ApiToken, User.username, User.printed_name)
        .join(User, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == digest)
    ).first()
    row = found[0] if found else None
    hmac.compare_digest(digest, row.token_hash if row else _DUMMY_HASH)
    if found is None or row is None or row.revoked_at is not None:
        raise Unauthenticated("The bearer token is unknown or revoked; ask an admin for a new one.")
    return Principal(
        token_id=row.id,
        user_id=row.user_id,
        username=found[1],
        printed_name=found[2],
        role=Role(row.role),
        plant_id=row.plant_id,
        name=row.name,
    )


def actor_name(principal: Principal) -> str:
    """How a principal is recorded in ``created_by`` columns."""
    label = principal.name or f"token-{principal.token_id}"
    return f"{principal.role.value}:{label}"


class PrincipalCache:
    """Opt-in, short-lived in-process memo of token hash -> principal.

    Off by default (``auth_cache_seconds = 0``): every request then checks its token in
    the database, so a revocation (API or CLI, on any hub process) applies to the next
    request. When enabled, entries live ``ttl`` seconds; revoking through this hub clears
    the cache at once, but a revocation made by another process takes up to ``ttl``.

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
    user = session.get(User, row.user_id)
    if user is None:
        raise Unauthenticated("The token this session was opened with has no user.")
    return Principal(
        token_id=row.id,
        user_id=user.id,
        username=user.username,
        printed_name=user.printed_name,
        role=Role(row.role),
        plant_id=row.plant_id,
        name=row.name,
    )
