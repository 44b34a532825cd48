"""Content-addressed artifact store: an ABC and the local-directory backend.

Blobs live at ``<root>/sha256/ab/cd/<digest>`` (the S3-style layout an object store would
use as keys). Uploads are streamed to a staging file under ``<root>/.staging`` with a size
cap, hashed on the way, fsynced, and moved into place by an atomic rename only after the
database has accepted the artifact's row.
"""

from __future__ import annotations

import abc
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from federation.errors import PayloadTooLarge

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StagedBlob:
    """Bytes received and hashed but not yet visible in the store."""

    path: Path
    digest: str
    size_bytes: int


class ArtifactStore(abc.ABC):
    """Where artifact bytes live. Implementations MUST never expose a partially written blob."""

    @abc.abstractmethod
    async def stage(self, chunks: AsyncIterator[bytes], *, max_bytes: int) -> StagedBlob:
        """Receive a stream into staging, hashing it.

        Raises
        ------
        PayloadTooLarge
            As soon as more than ``max_bytes`` arrive; nothing is left behind.
        """

    @abc.abstractmethod
    def commit(self, staged: StagedBlob) -> None:
        """Make a staged blob visible under its digest (atomic; idempotent)."""

    @abc.abstractmethod
    def discard(self, staged: StagedBlob) -> None:
        """Drop a staged blob."""

    @abc.abstractmethod
    def exists(self, digest: str) -> bool:
        """Whether a committed blob with this digest exists."""

    @abc.abstractmethod
    def path_for(self, digest: str) -> Path:
        """Local path to read a committed blob from."""

    @abc.abstractmethod
    def delete(self, digest: str) -> None:
        """Remove a committed blob (used only to undo a commit whose row was rolled back)."""


class LocalArtifactStore(ArtifactStore):
    """Artifact store in a local directory (the embedded default).

    Parameters
    ----------
    root
        Store directory; created if missing, with its staging area beside the blobs so the
        final rename never crosses filesystems.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.staging = self.root / ".staging"
        self.staging.mkdir(parents=True, exist_ok=True)

    def path_for(self, digest: str) -> Path:
        """Return ``<root>/sha256/ab/cd/<digest>``."""
        return self.root / "sha256" / digest[:2] / digest[2:4] / digest

    def exists(self, digest: str) -> bool:
        """Whether the blob is in the store."""
        return self.path_for(digest).is_file()

    async def stage(self, chunks: AsyncIterator[bytes], *, max_bytes: int) -> StagedBlob:
        """Stream into a staging file, enforcing ``max_bytes`` and hashing as bytes arrive."""
        fd, name = tempfile.mkstemp(dir=self.staging, prefix="upload-")
        path = Path(name)
        hasher = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(
                            f"The upload exceeds the hub's limit of {max_bytes} bytes; "
                            "raise MILLWRIGHT_HUB_MAX_UPLOAD_BYTES or upload a smaller artifact."
                        )
                    hasher.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return StagedBlob(path=path, digest=hasher.hexdigest(), size_bytes=size)

    def commit(self, staged: StagedBlob) -> None:
        """Atomically rename the staged file into place and fsync its directory."""
        target = self.path_for(staged.digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def discard(self, staged: StagedBlob) -> None:
        """Delete the staging file."""
        staged.path.unlink(missing_ok=True)

    def delete(self, digest: str) -> None:
        """Delete a committed blob and any directories it leaves empty."""
        path = self.path_for(digest)
        path.unlink(missing_ok=True)
        for parent in (path.parent, path.parent.parent, path.parent.parent.parent):
            try:
                parent.rmdir()
            except OSError:
                break
