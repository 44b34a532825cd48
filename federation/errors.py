"""One error vocabulary for hub, plant node and client, rendered as RFC 9457 problem+json.

Services raise these; the hub and the node each install one handler that renders them
(:mod:`federation.problem`), and :mod:`federation.hub_client` rebuilds the same class from
a response, so a code means the same thing on both sides of the wire.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Stable, machine-readable error codes (the ``code`` member of problem+json)."""

    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    ALREADY_EXISTS = "already_exists"
    INVALID_INPUT = "invalid_input"
    CONTRACT_VIOLATION = "contract_violation"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INTEGRITY_MISMATCH = "integrity_mismatch"
    IDEMPOTENCY_MISMATCH = "idempotency_mismatch"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"
    LAST_ADMIN_TOKEN = "last_admin_token"
    PROMOTION_REQUIRED = "promotion_required"
    FOUR_EYES = "four_eyes"
    SIGNATURE_INVALID = "signature_invalid"
    EVIDENCE_CHANGED = "evidence_changed"


# code -> (HTTP status, title). The single table both sides agree on.
STATUS_BY_CODE: dict[ErrorCode, tuple[int, str]] = {
    ErrorCode.NOT_FOUND: (404, "Not found"),
    ErrorCode.CONFLICT: (409, "Conflict"),
    ErrorCode.ALREADY_EXISTS: (409, "Already exists"),
    ErrorCode.INVALID_INPUT: (422, "Invalid input"),
    ErrorCode.CONTRACT_VIOLATION: (422, "Data contract violated"),
    ErrorCode.UNAUTHENTICATED: (401, "Authentication required"),
    ErrorCode.FORBIDDEN: (403, "Forbidden"),
    ErrorCode.PAYLOAD_TOO_LARGE: (413, "Payload too large"),
    ErrorCode.INTEGRITY_MISMATCH: (422, "Integrity check failed"),
    ErrorCode.IDEMPOTENCY_MISMATCH: (422, "Idempotency key reused with a different request"),
    ErrorCode.UNAVAILABLE: (503, "Service unavailable"),
    ErrorCode.INTERNAL: (500, "Internal error"),
    ErrorCode.LAST_ADMIN_TOKEN: (409, "Last admin token"),
    ErrorCode.PROMOTION_REQUIRED: (409, "Champion is set only through a promotion"),
    ErrorCode.FOUR_EYES: (403, "Four-eyes principle"),
    ErrorCode.SIGNATURE_INVALID: (401, "Signature refused"),
    ErrorCode.EVIDENCE_CHANGED: (409, "Evidence changed since the request"),
}

PROBLEM_TYPE_BASE = "https://millwright.dev/problems/"


class MillwrightError(Exception):
    """Base error: a public ``detail`` for people, a ``code`` for programs.

    Parameters
    ----------
    detail
        What went wrong and what to do about it, safe to show to the caller.
    code
        Machine-readable code; defaults to the class's code.
    errors
        Optional structured list (one dict per problem, e.g. per field or contract rule).
    diagnostic
        Extra text for server logs only, never sent to the client.
    """

    default_code: ErrorCode = ErrorCode.INTERNAL

    def __init__(
        self,
        detail: str,
        *,
        code: ErrorCode | None = None,
        errors: list[dict[str, Any]] | None = None,
        diagnostic: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.errors = errors or []
        self.diagnostic = diagnostic

    @property
    def status(self) -> int:
        """HTTP status for this error's code."""
        return STATUS_BY_CODE[self.code][0]

    @property
    def title(self) -> str:
        """Short human title for this error's code."""
        return STATUS_BY_CODE[self.code][1]

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """Render as an RFC 9457 problem+json body.

        Parameters
        ----------
        instance
            The request path the problem occurred on.

        Returns
        -------
        dict[str, Any]
            JSON-serializable problem document.
        """
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code.value,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code.value,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        return body


class NotFound(MillwrightError):
    """A named resource does not exist."""

    default_code = ErrorCode.NOT_FOUND


class Conflict(MillwrightError):
    """The request conflicts with current state (duplicate, immutable, wrong status)."""

    default_code = ErrorCode.CONFLICT


class InvalidInput(MillwrightError):
    """The request is well-formed JSON but its content is not acceptable."""

    default_code = ErrorCode.INVALID_INPUT


class Unauthenticated(MillwrightError):
    """No valid credentials were presented."""

    default_code = ErrorCode.UNAUTHENTICATED


class Forbidden(MillwrightError):
    """Credentials are valid but do not allow this action."""

    default_code = ErrorCode.FORBIDDEN


class PayloadTooLarge(MillwrightError):
    """The request body exceeds the configured limit."""

    default_code = ErrorCode.PAYLOAD_TOO_LARGE


class IntegrityMismatch(MillwrightError):
    """Bytes do not match their declared digest."""

    default_code = ErrorCode.INTEGRITY_MISMATCH


class Unavailable(MillwrightError):
    """A dependency (database, hub, model) is not reachable right now; retry later."""

    default_code = ErrorCode.UNAVAILABLE


class ContractViolation(MillwrightError):
    """Input data broke its data contract; ``errors`` lists each violation."""

    default_code = ErrorCode.CONTRACT_VIOLATION


_CLASS_BY_CODE: dict[ErrorCode, type[MillwrightError]] = {
    ErrorCode.NOT_FOUND: NotFound,
    ErrorCode.CONFLICT: Conflict,
    ErrorCode.ALREADY_EXISTS: Conflict,
    ErrorCode.INVALID_INPUT: InvalidInput,
    ErrorCode.IDEMPOTENCY_MISMATCH: InvalidInput,
    ErrorCode.CONTRACT_VIOLATION: ContractViolation,
    ErrorCode.UNAUTHENTICATED: Unauthenticated,
    ErrorCode.FORBIDDEN: Forbidden,
    ErrorCode.PAYLOAD_TOO_LARGE: PayloadTooLarge,
    ErrorCode.INTEGRITY_MISMATCH: IntegrityMismatch,
    ErrorCode.UNAVAILABLE: Unavailable,
    ErrorCode.PROMOTION_REQUIRED: Conflict,
    ErrorCode.FOUR_EYES: Forbidden,
    ErrorCode.SIGNATURE_INVALID: Unauthenticated,
    ErrorCode.EVIDENCE_CHANGED: Conflict,
}


def error_from_problem(problem: dict[str, Any], status: int) -> MillwrightError:
    """Rebuild the matching :class:`MillwrightError` from a problem+json body.

    Parameters
    ----------
    problem
        Parsed response body (may be any JSON object).
    status
        HTTP status of the response, used when the body carries no known code.

    Returns
    -------
    MillwrightError
        An instance of the subclass that raised it on the server.
    """
    raw_code = problem.get("code")
    try:
        code = ErrorCode(str(raw_code))
    except ValueError:
        code = next((c for c, (s, _) in STATUS_BY_CODE.items() if s == status), ErrorCode.INTERNAL)
    cls = _CLASS_BY_CODE.get(code, MillwrightError)
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    return cls(detail, code=code, errors=list(problem.get("errors") or []))
