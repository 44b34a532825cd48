"""Unpack a model artifact with hard limits: a decompression bomb is refused, not served.

A tar (usually gzip) archive is read member by member. Before a byte is written, each
member must be a regular file or folder with a relative path inside the destination (no
links, devices, absolute paths or ``..``), the member count must stay under its cap, and
the declared sizes must stay under the total cap and under ``max_ratio`` times the
archive's size on disk. On any refusal or error, everything written so far is deleted.
"""

from __future__ import annotations

import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from federation.errors import PayloadTooLarge

CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps of one unpacked artifact (``NodeSettings.artifact_max_*``)."""

    max_bytes: int = 512_000_000
    max_members: int = 1000
    max_ratio: float = 200.0


class ArchiveRefused(PayloadTooLarge):
    """The artifact breaks a limit or holds a member the node never unpacks."""


def _check_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")) or ".." in path.parts or "\\" in name:
        raise ArchiveRefused(f"Artifact member {name[:200]!r} is not a relative path inside it.")
    return path


def safe_extract(archive: Path, dest: Path, limits: ArchiveLimits) -> int:
    """Unpack ``archive`` into ``dest`` (emptied on failure); return the bytes written.

    Raises
    ------
    ArchiveRefused
        For a link, device, absolute or escaping path, too many members, too many bytes,
        or a compression ratio above the limit.
    tarfile.TarError
        If the file is not a readable tar archive.
    """
    on_disk = max(archive.stat().st_size, 1)
    budget = min(limits.max_bytes, int(limits.max_ratio * on_disk))
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    written = 0
    members = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # streams: the next header is read only when we get there
                members += 1
                if members > limits.max_members:
                    raise ArchiveRefused(
                        f"The artifact holds more than {limits.max_members} members."
                    )
                rel = _check_name(member.name)
                if not rel.parts:  # "." : the archive's root folder
                    if member.isdir():
                        continue
                    raise ArchiveRefused("Artifact member with an empty name.")
                target = root.joinpath(*rel.parts)
                if not target.resolve().is_relative_to(root):
                    raise ArchiveRefused(f"Artifact member {member.name[:200]!r} escapes it.")
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    raise ArchiveRefused(
                        f"Artifact member {member.name[:200]!r} is a link or device; "
                        "only files and folders are unpacked."
                    )
                if written + member.size > budget:
                    raise ArchiveRefused(
                        f"The artifact unpacks to more than {budget:,} bytes (limits: "
                        f"{limits.max_bytes:,} bytes, {limits.max_ratio:g}x its "
                        f"{on_disk:,} bytes); refused as a decompression bomb."
                    )
                source = tar.extractfile(member)
                if source is None:
                    raise ArchiveRefused(f"Artifact member {member.name[:200]!r} is unreadable.")
                target.parent.mkdir(parents=True, exist_ok=True)
                with source, target.open("wb") as out:
                    while chunk := source.read(CHUNK):
                        written += len(chunk)
                        if written > budget:  # never trust the header alone
                            raise ArchiveRefused("The artifact unpacks past its declared sizes.")
                        out.write(chunk)
    except BaseException:
        for child in dest.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        raise
    return written
