"""FastAPI exception handlers that render every error as RFC 9457 problem+json.

Installed by both the hub and the plant node so errors look the same everywhere.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from federation.errors import PROBLEM_TYPE_BASE, ErrorCode, MillwrightError

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("millwright.problem")

_CODE_BY_STATUS = {
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.INVALID_INPUT,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    422: ErrorCode.INVALID_INPUT,
    503: ErrorCode.UNAVAILABLE,
}


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    """Wrap a problem document in a response with the problem+json media type."""
    return JSONResponse(
        body, status_code=int(body["status"]), media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        out.append({"field": ".".join(loc), "message": err.get("msg", ""), "type": err.get("type")})
    return out


def install_problem_handlers(app: FastAPI) -> None:
    """Register handlers so domain errors, validation errors and HTTP errors are problem+json.

    Parameters
    ----------
    app
        The application to install the handlers on.
    """

    @app.exception_handler(MillwrightError)
    async def _domain(request: Request, exc: MillwrightError) -> JSONResponse:
        if exc.diagnostic:
            log.info("%s on %s: %s", exc.code, request.url.path, exc.diagnostic)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(exc.to_problem(instance=request.url.path), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            detail = "The request body is not valid JSON; fix the syntax and resend."
        else:
            fields = ", ".join(sorted({e["field"] for e in errors})) or "request"
            detail = f"The request did not pass validation ({fields}); see 'errors'."
        err = MillwrightError(detail, code=ErrorCode.INVALID_INPUT, errors=errors)
        return problem_response(err.to_problem(instance=request.url.path))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODE_BY_STATUS.get(exc.status_code, ErrorCode.INTERNAL)
        body = {
            "type": PROBLEM_TYPE_BASE + code.value,
            "title": str(exc.detail) if exc.status_code != 404 else "Not found",
            "status": exc.status_code,
            "detail": str(exc.detail),
            "code": code.value,
            "instance": request.url.path,
        }
        return problem_response(body, dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        err = MillwrightError(
            "An unexpected error occurred and was logged. Retry, and report it if it persists.",
            code=ErrorCode.INTERNAL,
        )
        return problem_response(err.to_problem(instance=request.url.path))
