"""Opaque keyset page tokens shared by every list endpoint."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from federation.errors import InvalidInput


def _fingerprint(filters: dict[str, Any]) -> str:
    raw = json.dumps(filters, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:12]


def encode_token(after: Any, filters: dict[str, Any]) -> str:
    """Encode the last key of a page, bound to the filters that produced it."""
    raw = json.dumps({"a": after, "f": _fingerprint(filters)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, filters: dict[str, Any]) -> Any:
    """Return the key to continue after, or None for the first page.

    Raises
    ------
    InvalidInput
        When the token is malformed or was issued for different filters.
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
