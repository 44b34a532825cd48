"""Field-by-field comparison of two versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from federation.errors import (
    NotFound,
)
from federation.schemas.registry import (
    FieldChange,
    VersionDiff,
    VersionRead,
)
from hub.registry.models import (
    ModelVersion,
)
from hub.registry.service.version_reads import read_from_row, version_rows


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key in value:
            _flatten(f"{prefix}.{key}" if prefix else str(key), value[key], out)
    else:
        out[prefix] = value


def diff_versions(*, session: Session, a_id: int, b_id: int) -> VersionDiff:
    """Compare two versions field by field; nested fields use dotted paths.

    Raises
    ------
    NotFound
        When either version does not exist.
    """
    result = session.execute(version_rows().where(ModelVersion.id.in_({a_id, b_id})))
    found = {read.id: read for read in map(read_from_row, result.mappings())}
    for missing in (a_id, b_id):
        if missing not in found:
            raise NotFound(f"model version {missing} does not exist; list versions to find its id.")
    a, b = found[a_id], found[b_id]
    flat_a: dict[str, Any] = {}
    flat_b: dict[str, Any] = {}
    skip = {"id"}
    dump_a, dump_b = a.model_dump(mode="json"), b.model_dump(mode="json")
    for field in VersionRead.model_fields:
        if field in skip:
            continue
        _flatten(field, dump_a[field], flat_a)
        _flatten(field, dump_b[field], flat_b)
    changes = [
        FieldChange(field=key, a=flat_a.get(key), b=flat_b.get(key))
        for key in sorted(set(flat_a) | set(flat_b))
        if flat_a.get(key) != flat_b.get(key)
    ]
    return VersionDiff(a=a, b=b, changes=changes)
