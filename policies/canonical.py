"""Canonical JSON and sha256: the bytes a decision, a signature or an audit entry hashes."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from typing import Any, Protocol


class _Dumpable(Protocol):
    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


def _default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dt.datetime | dt.date | dt.time):
        return obj.isoformat()
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"not JSON-serializable: {type(obj).__name__}")


def canonical_json(obj: Any) -> str:
    """Return ``obj`` as canonical JSON: sorted keys, no whitespace, UTF-8, no NaN or infinity.

    Pydantic models are dumped in JSON mode first; enums become their values and datetimes
    ISO 8601 strings.

    Parameters
    ----------
    obj
        Any JSON-compatible value, or a pydantic model.

    Returns
    -------
    str
        The canonical text; equal values give equal text whatever their key order.

    Raises
    ------
    ValueError
        If the value holds NaN or infinity (they have no JSON form).
    TypeError
        If a value cannot be represented in JSON.
    """
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
        default=_default,
    )


def sha256_of(obj: Any) -> str:
    """Return the hex sha256 of :func:`canonical_json` of ``obj`` (UTF-8).

    Parameters
    ----------
    obj
        Any value :func:`canonical_json` accepts.

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def evidence_sha256(evidence: _Dumpable) -> str:
    """Return the sha256 of an :class:`~policies.evidence.Evidence` (frozen into decisions).

    Parameters
    ----------
    evidence
        The evidence a decision was made on.

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    return sha256_of(evidence.model_dump(mode="json"))


def document_sha256(doc: _Dumpable) -> str:
    """Return the sha256 of a policy document's canonical JSON (what publishing pins).

    Parameters
    ----------
    doc
        A parsed policy document.

    Returns
    -------
    str
        64 lowercase hex digits; the YAML's comments, layout and key order do not matter.
    """
    return sha256_of(doc.model_dump(mode="json"))
