"""Readings: contract records built from one message's values, or a reason to quarantine it."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from plant_node.connectors.mapping import Fields

# Reasons a message is quarantined (the ``reason`` label of the connector counters).
MALFORMED = "malformed_payload"
MISSING = "missing_field"
WRONG_TYPE = "wrong_type"
NOT_FINITE = "not_finite"
UNIT_MISMATCH = "unit_mismatch"
INCOMPLETE = "incomplete_reading"
CONTRACT = "contract_violation"
SCORING = "scoring_failed"
REASONS = (MALFORMED, MISSING, WRONG_TYPE, NOT_FINITE, UNIT_MISMATCH, INCOMPLETE, CONTRACT,
           SCORING)  # fmt: skip


class Rejected(ValueError):
    """A message that cannot become a reading: ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field

    def violation(self) -> dict[str, Any]:
        """Return the entry stored in the quarantine's violation report."""
        return {"code": self.reason, "field": self.field, "message": self.message}


@dataclass
class Reading:
    """One contract record and where it came from; ``received`` is ``time.monotonic()``."""

    record: dict[str, Any]
    source: str
    received: float = field(default_factory=time.monotonic)
    meta: dict[str, Any] = field(default_factory=dict)
    stamp: datetime | None = None  # the source timestamp of an OPC UA reading


def _check_value(name: str, value: Any) -> Any:
    if value is None:
        raise Rejected(MISSING, f"{name} is null", name)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Rejected(WRONG_TYPE, f"{name} is a {type(value).__name__}", name)
    if isinstance(value, float) and not math.isfinite(value):
        raise Rejected(NOT_FINITE, f"{name} is {value}", name)
    return value


def build_record(fields: Fields, values: Mapping[str, tuple[Any, str | None]]) -> dict[str, Any]:
    """Fill the contract fields from source → (value, unit stated by the payload).

    Raises
    ------
    Rejected
        On a missing field, a value of the wrong type, NaN or infinity, or a unit other than
        the mapping's.
    """
    record: dict[str, Any] = dict(fields.constants)
    for name, spec in fields.fields.items():
        if spec.source not in values:
            raise Rejected(MISSING, f"{name} ({spec.source}) is missing", name)
        value, unit = values[spec.source]
        if unit is not None and spec.unit is not None and unit != spec.unit:
            raise Rejected(
                UNIT_MISMATCH, f"{name} arrived in {unit!r}, the line expects {spec.unit!r}", name
            )
        record[name] = _check_value(name, value)
    return record


def _walk(doc: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return False, None
        doc = doc[part]
    return True, doc


def echoed(doc: Mapping[str, Any], keys: list[str]) -> dict[str, Any]:
    """Return the scalar values of ``keys`` present in ``doc`` (what an answer echoes)."""
    out = {}
    for key in keys:
        value = doc.get(key)
        if isinstance(value, str | int | float | bool):
            out[key] = value
    return out


def parse_json(payload: bytes) -> dict[str, Any]:
    """Parse a JSON object payload.

    Raises
    ------
    Rejected
        If the payload is not a JSON object.
    """
    try:
        doc = json.loads(payload)  # NaN/Infinity parse, then fail as not_finite
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(MALFORMED, f"not JSON: {exc}"[:300]) from None
    if not isinstance(doc, dict):
        raise Rejected(MALFORMED, f"expected a JSON object, got {type(doc).__name__}")
    return doc


def from_json(fields: Fields, payload: bytes | dict[str, Any]) -> dict[str, Any]:
    """Build a record from a JSON object; a value may be ``{"value": x, "unit": "K"}``.

    Raises
    ------
    Rejected
        If the payload is not a JSON object, or as :func:`build_record`.
    """
    doc = payload if isinstance(payload, dict) else parse_json(payload)
    values: dict[str, tuple[Any, str | None]] = {}
    for spec in fields.fields.values():
        found, value = _walk(doc, spec.source)
        if not found:
            continue
        unit = None
        if isinstance(value, dict) and "value" in value:
            unit = value.get("unit")
            unit = unit if isinstance(unit, str) else None
            value = value["value"]
        values[spec.source] = (value, unit)
    return build_record(fields, values)


def preview(payload: bytes, limit: int = 2048) -> str:
    """Return what the quarantine keeps of a raw payload: UTF-8 text, else hex."""
    try:
        text = payload[:limit].decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + payload[: limit // 2].hex()
    return text
