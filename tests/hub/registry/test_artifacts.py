"""Contract suite of ArtifactStore, written once and run for every backend."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from federation.errors import PayloadTooLarge
from hub.registry.artifacts import ArtifactStore, LocalArtifactStore


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


class ArtifactStoreContract:
    """Subclass with a ``store`` fixture per backend."""

    __test__ = False

    def test_stage_hashes_and_commit_publishes_atomically(self, store: ArtifactStore) -> None:
        staged = asyncio.run(store.stage(_chunks(b"ab", b"cd"), max_bytes=10))
        assert staged.digest == hashlib.sha256(b"abcd").hexdigest() and staged.size_bytes == 4
        assert not store.exists(staged.digest)
        store.commit(staged)
        assert store.exists(staged.digest)
        assert store.path_for(staged.digest).read_bytes() == b"abcd"

    def test_layout_is_s3_style(self, store: ArtifactStore) -> None:
        digest = "ab" + "cd" + "0" * 60
        assert store.path_for(digest).parts[-4:] == ("sha256", "ab", "cd", digest)

    def test_oversize_stream_leaves_nothing(self, store: ArtifactStore, tmp_path: Path) -> None:
        with pytest.raises(PayloadTooLarge):
            asyncio.run(store.stage(_chunks(b"x" * 6, b"y" * 6), max_bytes=10))
        assert _files(tmp_path) == []

    def test_discard_and_delete(self, store: ArtifactStore, tmp_path: Path) -> None:
        kept = asyncio.run(store.stage(_chunks(b"keep"), max_bytes=10))
        dropped = asyncio.run(store.stage(_chunks(b"drop"), max_bytes=10))
        store.discard(dropped)
        store.commit(kept)
        store.delete(kept.digest)
        assert _files(tmp_path) == []


class TestLocalArtifactStore(ArtifactStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, tmp_path: Path) -> ArtifactStore:
        return LocalArtifactStore(tmp_path)
