"""Opaque keyset page tokens shared by every list endpoint."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from federation.errors import InvalidInput

T = TypeVar("T")


def _fingerprint(filters: dict[str, Any]) -> str:
    raw = json.dumps(filters, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:12]


def encode_token(after: Any, filters: dict[str, Any]) -> str:
    """Encode the last key of a page, bound to the filters that produced it."""
    raw = json.dumps({"a": after, "f": _fingerprint(filters)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(
    token: str | None, filters: dict[str, Any], key_type: type | None = None
) -> Any:
    """Return the key to continue after, or None for the first page.

    ``key_type`` is the type the key must have (``int`` for numeric ids): tokens are not
    signed, so a hand-edited one must fail here as bad input, not later in the query.

    Raises
    ------
    InvalidInput
        When the token is malformed, its key is not a ``key_type``, or it was issued for
        different filters.
    """
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after, fingerprint = data["a"], data["f"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(
            "page_token is not a token this hub issued; start again without page_token."
        ) from exc
    if key_type is not None and (not isinstance(after, key_type) or isinstance(after, bool)):
        raise InvalidInput("page_token is malformed; start again without it.")
    if fingerprint != _fingerprint(filters):
        raise InvalidInput(
            "page_token was issued for different filters; repeat the original filters or "
            "start again without page_token."
        )
    return after


def clamp_page_size(requested: int | None, *, default: int, maximum: int) -> int:
    """Return the page size to use: the default when omitted, never above the maximum."""
    if requested is None:
        return default
    return max(1, min(requested, maximum))


def scalar_page(
    *,
    session: Session,
    stmt: Select[T],
    key: InstrumentedAttribute[Any],
    after: Any,
    page_size: int,
    filters: dict[str, Any],
) -> tuple[list[T], str | None]:
    """Read one page of ``stmt`` in ascending ``key`` order, continuing after ``after``.

    One extra row is fetched to decide whether a next page exists; its token carries the last
    key of this page, bound to ``filters``.
    """
    if after is not None:
        stmt = stmt.where(key > after)
    rows = list(session.scalars(stmt.order_by(key).limit(page_size + 1)))
    token = (
        encode_token(getattr(rows[page_size - 1], key.key), filters)
        if len(rows) > page_size
        else None
    )
    return rows[:page_size], token
