"""What a plant should run: its aliases with version, digest and size."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.schemas.registry import (
    AliasName,
    Assignment,
    AssignmentList,
)
from hub.registry.models import (
    Artifact,
)
from hub.registry.service.aliases import list_aliases


def list_assignments(*, session: Session, plant_id: str) -> AssignmentList:
    """List what a plant should run: each alias with its version, artifact digest and size."""
    aliases = list_aliases(session=session, plant_id=plant_id)
    digests = {a.version.artifact_digest for a in aliases if a.version.artifact_digest}
    sizes = _artifact_sizes(session, digests)
    items = [
        Assignment(
            model=a.model.name,
            alias=AliasName(a.alias),
            version_id=a.version_id,
            version=a.version.version,
            recipe_id=a.version.recipe_id,
            artifact_digest=a.version.artifact_digest,
            artifact_size_bytes=sizes.get(a.version.artifact_digest or ""),
            updated_at=a.updated_at,
        )
        for a in aliases
    ]
    return AssignmentList(plant_id=plant_id, items=items)


def _artifact_sizes(session: Session, digests: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(digests))
    if not wanted:
        return {}
    rows = session.execute(
        select(Artifact.digest, Artifact.size_bytes).where(Artifact.digest.in_(wanted))
    )
    return {digest: size for digest, size in rows}


def assignments_etag(assignments: AssignmentList) -> str:
    """Return the strong ETag of a plant's assignments (sha256 of their canonical JSON)."""
    body = assignments.model_dump_json().encode()
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
