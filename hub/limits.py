"""ASGI middleware that bounds what a request may carry before any route sees it.

* Body size per route, enforced while streaming: a declared ``Content-Length`` over the
  limit is answered 413 without reading a byte, and a body that grows past the limit (e.g.
  chunked) stops at the first chunk that crosses it. Nothing is buffered beyond the limit.
* No control characters in the URL: a NUL in a path or query value reached PostgreSQL as
  a driver error (500); it is now a 422 before routing.

Limits come from :class:`hub.config.HubSettings` (``MILLWRIGHT_HUB_MAX_*_BYTES``); artifact
uploads keep their own, larger limit (``max_upload_bytes``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_plus

from fastapi import HTTPException

from federation.errors import ErrorCode, MillwrightError, PayloadTooLarge
from hub.config import API_PREFIX, HubSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def route_limits(settings: HubSettings) -> list[tuple[str, re.Pattern[str], int, str]]:
    """Return ``(method, path pattern, limit, setting name)`` rows, first match wins."""
    p = re.escape(API_PREFIX)
    return [
        ("PUT", re.compile(rf"^{p}/artifacts/"), settings.max_upload_bytes, "MAX_UPLOAD_BYTES"),
        (
            "POST",
            re.compile(rf"^{p}/(versions/batch|plants/[^/]+/(events|metrics-reports/batch))$"),
            settings.max_batch_body_bytes,
            "MAX_BATCH_BODY_BYTES",
        ),
        (
            "*",
            re.compile(rf"^{p}/recipes(/|$)"),
            settings.max_recipe_body_bytes,
            "MAX_RECIPE_BODY_BYTES",
        ),
    ]


def _problem(error: MillwrightError, path: str) -> tuple[int, bytes]:
    return error.status, json.dumps(error.to_problem(instance=path)).encode()


class RequestLimitsMiddleware:
    """Refuse oversized bodies (413) and control characters in URLs (422), as problem+json.

    Parameters
    ----------
    app
        The wrapped ASGI application.
    settings
        Source of the limits.
    """

    def __init__(self, app: ASGIApp, settings: HubSettings) -> None:
        self.app = app
        self.default = settings.max_body_bytes
        self.routes = route_limits(settings)

    def limit_for(self, method: str, path: str) -> tuple[int, str]:
        """Return the body limit of a request and the setting that configures it."""
        for m, pattern, limit, name in self.routes:
            if m in ("*", method) and pattern.match(path):
                return limit, name
        return self.default, "MAX_BODY_BYTES"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the URL and the declared size, then count the body as it streams in."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        query = unquote_plus(scope.get("query_string", b"").decode("latin-1"))
        if _CONTROL.search(path) or _CONTROL.search(query):
            error = MillwrightError(
                "The URL contains a NUL or another control character; remove it.",
                code=ErrorCode.INVALID_INPUT,
            )
            await self._reply(send, *_problem(error, path.replace("\x00", "")))
            return
        limit, name = self.limit_for(scope["method"], path)
        too_large = PayloadTooLarge(
            f"The request body exceeds {limit} bytes, the most this route accepts "
            f"(MILLWRIGHT_HUB_{name})."
        )
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._reply(send, *_problem(too_large, path))
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException passes FastAPI's body parsing untouched, and the
                    # problem handlers render it as 413 payload_too_large.
                    raise HTTPException(413, detail=too_large.detail)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await self._reply(send, *_problem(too_large, path))

    @staticmethod
    async def _reply(send: Send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
