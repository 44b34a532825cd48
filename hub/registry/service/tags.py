"""Version tags: set and delete."""

from __future__ import annotations

from sqlalchemy.orm import Session

from federation.errors import (
    NotFound,
)
from hub.db import commit_or_conflict
from hub.registry.models import (
    ModelVersion,
    VersionTag,
)
from hub.registry.service.versions import get_version_or_raise


def set_tag(*, session: Session, version_id: int, key: str, value: str) -> ModelVersion:
    """Set (or overwrite) one tag on a version."""
    version = get_version_or_raise(session=session, version_id=version_id)
    for tag in version.tag_rows:
        if tag.key == key:
            tag.value = value
            break
    else:
        version.tag_rows.append(VersionTag(key=key, value=value))
    version.tags = {**version.tags, key: value}
    commit_or_conflict(session, detail=f"tag '{key}' was changed concurrently; retry")
    return version


def delete_tag(*, session: Session, version_id: int, key: str) -> ModelVersion:
    """Remove one tag from a version.

    Raises
    ------
    NotFound
        When the version or the tag does not exist.
    """
    version = get_version_or_raise(session=session, version_id=version_id)
    if key not in version.tags:
        raise NotFound(f"model version {version_id} has no tag '{key}'.")
    version.tag_rows = [t for t in version.tag_rows if t.key != key]
    version.tags = {k: v for k, v in version.tags.items() if k != key}
    session.commit()
    return version
