"""Artifact rows: upload registration, lookup, blob checks, plant access."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from federation.errors import (
    Conflict,
    IntegrityMismatch,
    NotFound,
    Unavailable,
)
from hub.audit import service as audit_service
from hub.db import commit_or_conflict
from hub.registry.artifacts import ArtifactStore, StagedBlob
from hub.registry.models import (
    Alias,
    Artifact,
    ModelVersion,
)

log = logging.getLogger("millwright.hub.registry")


def get_artifact(*, session: Session, digest: str) -> Artifact | None:
    """Return the artifact row for this digest, or None."""
    return session.get(Artifact, digest)


def get_artifact_or_raise(*, session: Session, digest: str) -> Artifact:
    """Return the artifact row for this digest.

    Raises
    ------
    NotFound
        When no artifact with this digest was uploaded.
    """
    artifact = get_artifact(session=session, digest=digest)
    if artifact is None:
        raise NotFound(f"artifact sha256:{digest} was never uploaded; upload it first.")
    return artifact


def _blob_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _blob_intact(store: ArtifactStore, artifact: Artifact) -> bool:
    return _blob_size(store.path_for(artifact.digest)) == artifact.size_bytes


def stored_blob_or_raise(*, store: ArtifactStore, artifact: Artifact) -> Path:
    """Return the path of an artifact's bytes, checked against the row before streaming.

    The row outlives its blob when someone deletes or truncates files under the store
    directory; serving that would fail mid-response (a bare 500) or send wrong bytes.

    Raises
    ------
    Unavailable
        When the blob is missing or its size differs from the registered size.
    """
    path = store.path_for(artifact.digest)
    size = _blob_size(path)
    if size != artifact.size_bytes:
        found = "missing" if size is None else f"{size} bytes, registered {artifact.size_bytes}"
        log.error("artifact blob damaged", extra={"digest": artifact.digest, "found": found})
        raise Unavailable(
            f"artifact sha256:{artifact.digest} is registered but its bytes in the artifact "
            f"store are {found}; restore the blob from backup or re-upload the same bytes."
        )
    return path


def register_artifact(
    *,
    session: Session,
    store: ArtifactStore,
    staged: StagedBlob,
    declared_digest: str,
    media_type: str,
    actor: str,
) -> Artifact:
    """Accept a staged upload: check its digest, insert the row, then publish the bytes.

    The row is committed before the rename so a blob is never visible without its row;
    if the rename fails the row is removed again. Uploading existing bytes is a no-op.

    Raises
    ------
    IntegrityMismatch
        When the bytes do not hash to ``declared_digest`` (nothing is kept).
    """
    if staged.digest != declared_digest:
        store.discard(staged)
        raise IntegrityMismatch(
            f"The uploaded bytes hash to sha256:{staged.digest}, not the declared "
            f"sha256:{declared_digest}; the upload was discarded. Re-send the exact file.",
            errors=[{"declared": declared_digest, "actual": staged.digest}],
        )
    existing = get_artifact(session=session, digest=declared_digest)
    if existing is not None:
        if _blob_intact(store, existing):
            store.discard(staged)
        else:  # heal a store that lost or truncated the blob: these bytes hash right
            store.commit(staged)
            log.warning("artifact blob restored by upload", extra={"digest": declared_digest})
        return existing
    artifact = Artifact(
        digest=declared_digest,
        size_bytes=staged.size_bytes,
        media_type=media_type,
        created_by=actor,
    )
    session.add(artifact)
    audit_service.append(
        session=session,
        actor=actor,
        action="artifact.upload",
        subject=f"artifact/sha256:{declared_digest}",
        after={
            "digest": declared_digest,
            "size_bytes": staged.size_bytes,
            "media_type": media_type,
        },
    )
    try:
        commit_or_conflict(
            session, detail=f"artifact sha256:{declared_digest} was uploaded concurrently"
        )
    except Conflict:
        store.discard(staged)
        raise
    try:
        store.commit(staged)
    except OSError:
        store.discard(staged)
        session.delete(artifact)
        session.commit()
        raise
    return artifact


def artifact_assigned_to_plant(*, session: Session, digest: str, plant_id: str) -> bool:
    """Tell whether a plant may fetch this artifact (its alias or its version uses it)."""
    via_alias = exists().where(
        Alias.plant_id == plant_id,
        Alias.version_id == ModelVersion.id,
        ModelVersion.artifact_digest == digest,
    )
    via_version = exists().where(
        ModelVersion.plant_id == plant_id, ModelVersion.artifact_digest == digest
    )
    return bool(session.scalar(select(or_(via_alias, via_version))))


def blob_matches_digest(*, session: Session, store: ArtifactStore, digest: str | None) -> bool:
    """Whether ``digest`` is registered and its stored bytes, re-hashed now, still match it."""
    if digest is None or get_artifact(session=session, digest=digest) is None:
        return False
    hasher = hashlib.sha256()
    try:
        with store.path_for(digest).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                hasher.update(chunk)
    except OSError:
        return False
    return hasher.hexdigest() == digest
