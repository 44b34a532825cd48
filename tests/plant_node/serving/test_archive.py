"""Artifact unpacking: a decompression bomb, links and escaping paths are refused, nothing kept."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from plant_node.serving.archive import ArchiveLimits, ArchiveRefused, safe_extract
from plant_node.serving.cache import ModelCache
from plant_node.serving.hub_source import HubModelSource
from plant_node.serving.runtime import ModelRuntime
from plant_node.serving.sync import sync_champion
from tests.plant_node.serving.bombs import hostile, zero_bomb
from tests.plant_node.serving.irs import build_logistic_ir


def _hub(blob: Path) -> object:
    class FakeHub:
        def get_assignments(self, plant_id: str) -> object:
            item = SimpleNamespace(model="ai4i", alias="champion", version="9", artifact_digest="d")
            return SimpleNamespace(items=[item])

        def download_artifact(self, digest: str, dest: Path) -> int:
            dest.write_bytes(blob.read_bytes())
            return blob.stat().st_size

    return FakeHub()


def test_a_gzip_bomb_is_refused_and_the_cached_model_keeps_serving(tmp_path: Path) -> None:
    good = build_logistic_ir(tmp_path / "good", [0.5, -0.5], version="1", baseline="ai4i")
    cache = ModelCache(tmp_path / "cache")
    cache.install(good, "1", "ai4i")
    cache.set_champion("ai4i", "1")
    # 16 MiB of zeros after a real export: ~20 kB on disk, ratio ~800 (the bomb of issue 18
    # was 1.5 MB -> 1 GiB; the benchmark builds that one).
    bomb = zero_bomb(tmp_path / "bomb.tar.gz", 16 << 20, prefix=good)
    source = HubModelSource(_hub(bomb), "plant-1")  # type: ignore[arg-type]
    runtime = ModelRuntime("ai4i", featurizer_factory=lambda m: lambda items: items)

    with pytest.raises(ArchiveRefused, match="decompression bomb"):
        source.list_assignments()
        source.download(source.list_assignments()[0], tmp_path / "dest")
    origin, versions = sync_champion(runtime, cache, source)

    assert bomb.stat().st_size < 200_000
    assert list((tmp_path / "dest").iterdir()) == []  # the export's files were deleted too
    assert (origin, versions) == ("cache", ["1"])
    assert [p.name for p in cache.versions("ai4i")] == ["1"]
    assert not list((tmp_path / "cache").rglob("model.bin.pad"))


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "absolute", "dotdot"])
def test_links_and_escaping_paths_are_refused(tmp_path: Path, kind: str) -> None:
    archive = hostile(tmp_path / f"{kind}.tar.gz", kind)
    dest = tmp_path / "dest"

    with pytest.raises(ArchiveRefused):
        safe_extract(archive, dest, ArchiveLimits())

    assert list(dest.iterdir()) == []
    assert not (tmp_path / "evil").exists()


def test_member_count_and_total_size_caps(tmp_path: Path) -> None:
    many = tmp_path / "many.tar"
    with tarfile.open(many, "w") as tar:
        for i in range(6):
            info = tarfile.TarInfo(f"f{i}")
            info.size = 10
            tar.addfile(info, io.BytesIO(b"x" * 10))

    with pytest.raises(ArchiveRefused, match="more than 5 members"):
        safe_extract(many, tmp_path / "a", ArchiveLimits(max_members=5))
    with pytest.raises(ArchiveRefused):
        safe_extract(many, tmp_path / "b", ArchiveLimits(max_bytes=40, max_ratio=1e9))
    assert safe_extract(many, tmp_path / "c", ArchiveLimits()) == 60
