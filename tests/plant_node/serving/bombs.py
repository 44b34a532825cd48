"""Hostile model artifacts built in the test: a gzip bomb (zeros), links, escaping paths."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


class _Zeros(io.RawIOBase):
    """``n`` zero bytes, read in chunks (the bomb is never held in memory)."""

    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = b"\0" * n
        self.left -= n
        return n


def zero_bomb(path: Path, size: int, *, prefix: Path | None = None) -> Path:
    """Write a tar.gz holding ``prefix``'s files (if any) then one ``size``-byte zero file."""
    with tarfile.open(path, "w:gz", compresslevel=9) as tar:
        if prefix is not None:
            tar.add(prefix, arcname=".")
        info = tarfile.TarInfo("model.bin.pad")
        info.size = size
        tar.addfile(info, io.BufferedReader(_Zeros(size), 1 << 20))
    return path


def hostile(path: Path, kind: str) -> Path:
    """A tar.gz with one forbidden member: ``symlink``, ``hardlink``, ``absolute``, ``dotdot``."""
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("metadata.json")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"{}"))
        info = tarfile.TarInfo({"absolute": "/tmp/evil", "dotdot": "../evil"}.get(kind, "evil"))
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hardlink":
            info.type, info.linkname = tarfile.LNKTYPE, "metadata.json"
        else:
            info.size = 4
        tar.addfile(info, io.BytesIO(b"evil") if info.isfile() else None)
    return path
