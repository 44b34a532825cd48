"""Dashboard session cookies: HMAC-signed, expiring, bound to the token that opened them.

The cookie holds ``v1.<token id>.<expiry epoch>.<nonce>.<signature>``; never the token. The
CSRF token of a session is derived from its nonce, so forms need no server-side state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE_NAME = "mw_session"
#: Carries the CSRF token of the sign-in form, before any session exists.
PRE_SESSION_COOKIE = "mw_signin"


@dataclass(frozen=True)
class UISession:
    """A verified session: which token opened it, until when, and its CSRF token."""

    token_id: int
    expires_at: int
    nonce: str

    def csrf(self, key: bytes) -> str:
        """Return the CSRF token forms of this session must carry."""
        return sign(key, f"csrf.{self.nonce}")


def sign(key: bytes, message: str) -> str:
    """Return the URL-safe HMAC-SHA256 of ``message``."""
    mac = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def issue(key: bytes, *, token_id: int, ttl_seconds: float, now: float | None = None) -> str:
    """Return a new signed cookie value for ``token_id``."""
    expires = int((now if now is not None else time.time()) + ttl_seconds)
    body = f"v1.{token_id}.{expires}.{secrets.token_urlsafe(12).replace('.', '_')}"
    return f"{body}.{sign(key, body)}"


def verify(key: bytes, value: str | None, *, now: float | None = None) -> UISession | None:
    """Return the session of a cookie value, or None if missing, tampered or expired."""
    if not value:
        return None
    body, _, signature = value.rpartition(".")
    if not body or not hmac.compare_digest(sign(key, body), signature):
        return None
    parts = body.split(".")
    if len(parts) != 4 or parts[0] != "v1" or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    expires = int(parts[2])
    if expires <= (now if now is not None else time.time()):
        return None
    return UISession(token_id=int(parts[1]), expires_at=expires, nonce=parts[3])


def check_csrf(expected: str, given: str | None) -> bool:
    """Whether a submitted CSRF token matches (constant time)."""
    return bool(given) and hmac.compare_digest(expected, given or "")
