"""Node keys: create, list, revoke, authenticate, and hash the bootstrap keys from settings.

Keys are 256-bit random secrets, so a single sha256 is a sufficient hash (no password
stretching needed: there is nothing to brute-force). Every request checks its key against the
database, so a revocation (from the CLI, another process) applies to the very next request;
:class:`KeyVerifier` makes that check cheap for keys it has already verified.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from federation.errors import NotFound, Unauthenticated
from plant_node.auth.models import NodeKey
from plant_node.auth.schemas import (
    KEY_PREFIX,
    BootstrapKey,
    NodeKeyCreated,
    NodeKeyRead,
    NodePrincipal,
    NodeRole,
)
from plant_node.db import utcnow

_DUMMY_HASH = "0" * 64


def hash_key(key: str) -> str:
    """Return the sha256 hex digest under which a key is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    """Return a new random key (``mwn_`` + 43 URL-safe characters, 256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_key(*, session: Session, role: NodeRole, name: str) -> NodeKeyCreated:
    """Create a key and commit; the returned secret is shown once and never stored."""
    secret = generate_key()
    row = NodeKey(key_hash=hash_key(secret), prefix=secret[:10], role=role.value, name=name)
    session.add(row)
    session.commit()
    return NodeKeyCreated(**NodeKeyRead.model_validate(row).model_dump(), key=secret)


def list_keys(*, session: Session, include_revoked: bool = True) -> list[NodeKeyRead]:
    """Return every key, oldest first (revoked ones too unless told otherwise)."""
    query = select(NodeKey).order_by(NodeKey.id)
    if not include_revoked:
        query = query.where(NodeKey.revoked_at.is_(None))
    return [NodeKeyRead.model_validate(r) for r in session.scalars(query)]


def revoke_key(*, session: Session, key_id: int) -> NodeKeyRead:
    """Revoke a key and commit; the next request with it is refused.

    Raises
    ------
    NotFound
        If no key has this id.
    """
    row = session.get(NodeKey, key_id)
    if row is None:
        raise NotFound(f"No node key has id {key_id}.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()
    return NodeKeyRead.model_validate(row)


def authenticate(*, session: Session, key: str | None) -> NodePrincipal:
    """Resolve a bearer key to its principal.

    Raises
    ------
    Unauthenticated
        When the key is missing, unknown or revoked.
    """
    if not key:
        raise Unauthenticated(
            "This endpoint needs a node key: send 'Authorization: Bearer <key>' "
            "(create one with `millwright node create-key`)."
        )
    digest = hash_key(key)
    row = session.execute(
        select(NodeKey.id, NodeKey.name, NodeKey.role, NodeKey.key_hash, NodeKey.revoked_at)
        .where(NodeKey.key_hash == digest)
    ).first()  # fmt: skip
    hmac.compare_digest(digest, row.key_hash if row else _DUMMY_HASH)
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("The node key is unknown or revoked; ask a plant engineer.")
    return NodePrincipal(key_id=row.id, name=row.name, role=NodeRole(row.role))


class KeyVerifier:
    """The request path's key check: verified keys are cached, revocation is still read per call.

    The first request with a key runs :func:`authenticate` (an ORM session, ~330 µs). A key
    that verified is cached by its digest; its later requests only re-read its ``revoked_at``
    by primary key on one DBAPI connection kept open (~5 µs on SQLite), so a key revoked from
    the CLI or another process is still refused from the very next request, and a deleted or
    revoked key leaves the cache. Unknown keys are never cached. Thread-safe (one lock).

    Parameters
    ----------
    engine
        The node's engine (the revocation reads use one of its connections).
    max_keys
        Cached keys at most; the cache is emptied when it is full (keys are few).
    """

    def __init__(self, engine: Engine, max_keys: int = 1024) -> None:
        self._engine = engine
        self._max_keys = max_keys
        self._cache: dict[str, NodePrincipal] = {}
        self._lock = threading.Lock()
        self._conn: Any = None
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sql = f"SELECT revoked_at FROM {NodeKey.__tablename__} WHERE id = {mark}"

    def authenticate(self, key: str | None) -> NodePrincipal:
        """Resolve a bearer key like :func:`authenticate`, cheaply for a key seen before.

        Raises
        ------
        Unauthenticated
            When the key is missing, unknown or revoked.
        """
        digest = hash_key(key) if key else None
        cached = self._cache.get(digest) if digest else None
        if cached is not None:
            revoked = self._revoked(cached.key_id)
            if revoked is False:
                return cached
            self._cache.pop(digest or "", None)
            if revoked is True:
                raise Unauthenticated("The node key is unknown or revoked; ask a plant engineer.")
        with Session(self._engine) as session:  # first sight, or the fast read failed
            principal = authenticate(session=session, key=key)
        if digest is not None:
            if len(self._cache) >= self._max_keys:
                self._cache.clear()
            self._cache[digest] = principal
        return principal

    def _revoked(self, key_id: int) -> bool | None:
        """Return True when the key is revoked or gone, False when valid, None on a DB error."""
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._engine.raw_connection()
                cur = self._conn.cursor()
                try:
                    cur.execute(self._sql, (key_id,))
                    row = cur.fetchone()
                finally:
                    cur.close()
                self._conn.commit()  # no snapshot is kept: the next read sees new revocations
            except Exception:
                self._close_locked()
                return None
        return row is None or row[0] is not None

    def close(self) -> None:
        """Give the connection back (the app's shutdown)."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # a broken connection: nothing to give back
                pass
            self._conn = None


def install_bootstrap_keys(*, session: Session, keys: Iterable[BootstrapKey]) -> int:
    """Store the hashes of keys given in settings; return how many were new.

    A bootstrap key already in the database is left as it is: one revoked with
    ``revoke-key`` stays revoked across restarts even while the setting still names it.
    """
    wanted: Sequence[BootstrapKey] = list(keys)
    if not wanted:
        return 0
    hashes = {hash_key(k.key.get_secret_value()): k for k in wanted}
    known = set(session.scalars(select(NodeKey.key_hash).where(NodeKey.key_hash.in_(hashes))))
    added = 0
    for digest, key in hashes.items():
        if digest in known:
            continue
        secret = key.key.get_secret_value()
        session.add(
            NodeKey(key_hash=digest, prefix=secret[:10], role=key.role.value, name=key.name)
        )
        added += 1
    session.commit()
    return added
