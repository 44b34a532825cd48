"""Node keys: create, list, revoke, authenticate, and hash the bootstrap keys from settings.

Keys are 256-bit random secrets, so a single sha256 is a sufficient hash (no password
stretching needed: there is nothing to brute-force). Every request looks its key up in the
database, so a revocation (from the CLI, another process) applies to the very next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence

from sqlalchemy import select
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
