"""Replay of creates retried with the same ``Idempotency-Key``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy.orm import Session

from federation.errors import ErrorCode, InvalidInput
from hub.db import utcnow
from hub.idempotency.models import IdempotencyRecord

DEFAULT_TTL = dt.timedelta(hours=24)


@dataclass(frozen=True)
class IdempotencyKey:
    """A client-chosen key, scoped to the token that sent it, replayed for ``ttl``."""

    key: str
    actor: str
    ttl: dt.timedelta = DEFAULT_TTL


def request_hash(scope: str, payload: BaseModel | dict[str, object]) -> str:
    """Hash what a request asks for, so a reused key with another body is detected."""
    body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    raw = json.dumps({"scope": scope, "body": body}, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def find_replay(
    *, session: Session, idem: IdempotencyKey | None, scope: str, req_hash: str
) -> str | None:
    """Return what an earlier request with this key created, or None if the key is new.

    Raises
    ------
    InvalidInput
        ``idempotency_mismatch`` when the key was used for a different request.
    """
    if idem is None:
        return None
    record = session.get(IdempotencyRecord, (idem.actor, idem.key))
    if record is None:
        return None
    if record.created_at < utcnow() - idem.ttl:
        # Expired: the key is new again (clients retry within minutes, not days); the stale
        # row goes in the caller's transaction so ``remember`` can insert the key afresh.
        session.delete(record)
        session.flush()
        return None
    if record.scope != scope or record.request_hash != req_hash:
        raise InvalidInput(
            f"Idempotency-Key '{idem.key}' was already used for a different request; "
            "use a new key for a new request.",
            code=ErrorCode.IDEMPOTENCY_MISMATCH,
        )
    return record.resource_ref


def remember(
    *,
    session: Session,
    idem: IdempotencyKey | None,
    scope: str,
    req_hash: str,
    resource_ref: str,
) -> None:
    """Record the key in the caller's transaction (flushes, never commits)."""
    if idem is None:
        return
    session.add(
        IdempotencyRecord(
            actor=idem.actor,
            key=idem.key,
            scope=scope,
            request_hash=req_hash,
            resource_ref=resource_ref,
            created_by=idem.actor,
        )
    )


def purge_expired(*, session: Session, ttl: dt.timedelta) -> int:
    """Delete keys older than ``ttl`` and commit; return how many went (the table stays small)."""
    result = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - ttl)
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
