"""The local model cache: verified versions per baseline, newest first, last N kept.

Layout: ``<cache>/<baseline>/<version>/`` holding the IR files, the manifest and an
``.installed`` marker (nanosecond install time). A version is copied to a temporary folder,
verified, and renamed into place, so a crash never leaves a half-written version visible.
A version fetched only to be staged (the hub's shadow or challenger) also holds a ``.staged``
marker until it is made champion: the start order leaves it out, so a version that never
passed its stages is never loaded as the champion (nor as its fallback, ``previous``) just
because it is the newest install.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import uuid
from pathlib import Path

from plant_node.serving.runtime import (
    CACHE_MARKER,
    REGISTRY_FILE,
    read_manifest,
    record_side_files,
    verify_model_dir,
)

log = logging.getLogger("millwright.node.cache")
MARKER = CACHE_MARKER
CHAMPION_FILE = "CHAMPION"
STAGED_MARKER = ".staged"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def dir_name(value: str) -> str:
    """Return the cache folder name of a baseline or version (a safe path segment)."""
    return _SAFE.sub("_", value)[:128] or "_"


class ModelCache:
    """Model versions kept on the node's disk.

    Parameters
    ----------
    root
        Cache directory (``NodeSettings.model_cache_dir``).
    keep
        How many versions per baseline survive :meth:`prune`.
    """

    def __init__(self, root: Path, keep: int = 3) -> None:
        self.root = root
        self.keep = keep
        self.root.mkdir(parents=True, exist_ok=True)

    def install(
        self,
        src_dir: Path,
        version: str | None = None,
        baseline: str | None = None,
        registry_model: str | None = None,
        *,
        staged: bool = False,
    ) -> Path:
        """Copy an exported model directory into the cache after verifying its sha256.

        Parameters
        ----------
        src_dir
            Directory with the manifest and IR files.
        version
            Registry version (names the cache folder); defaults to the manifest's.
        baseline
            Baseline it serves (the hub's assignment); defaults to the manifest's.
        registry_model
            The hub registry's model name (from the assignment), recorded beside the manifest
            so the node reports under the registry's name; ``None`` for a local install.
        staged
            Fetched to be staged as a challenger, not to serve: marked ``.staged`` (see the
            module) until :meth:`set_champion` names it. A version already cached keeps its
            mark as it was.

        Returns
        -------
        Path
            The cached version's directory.

        Raises
        ------
        IntegrityMismatch
            If a file does not match the manifest (nothing is installed).
        """
        manifest = read_manifest(src_dir)
        base_dir = self.root / dir_name(baseline or manifest.baseline)
        base_dir.mkdir(parents=True, exist_ok=True)
        final = base_dir / dir_name(version or manifest.version)
        tmp = base_dir / f".tmp-{uuid.uuid4().hex}"
        shutil.copytree(src_dir, tmp)
        try:
            verify_model_dir(tmp, manifest)
            if registry_model is not None:
                (tmp / REGISTRY_FILE).write_text(json.dumps({"model": registry_model}))
            record_side_files(tmp)
            (tmp / MARKER).write_text(str(time.time_ns()))
            if staged and not final.exists():
                (tmp / STAGED_MARKER).touch()
            elif (final / STAGED_MARKER).is_file():
                (tmp / STAGED_MARKER).touch()
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def versions(self, baseline: str) -> list[Path]:
        """Return the cached version directories of ``baseline``, newest install first."""
        base_dir = self.root / dir_name(baseline)
        if not base_dir.is_dir():
            return []
        found: list[tuple[int, Path]] = []
        for path in base_dir.iterdir():
            marker = path / MARKER
            if path.is_dir() and not path.name.startswith(".") and marker.is_file():
                try:
                    found.append((int(marker.read_text().strip() or 0), path))
                except ValueError:
                    continue
        return [p for _, p in sorted(found, key=lambda t: t[0], reverse=True)]

    def champion(self, baseline: str) -> str | None:
        """Return the folder name of the version last made champion, if recorded."""
        path = self.root / dir_name(baseline) / CHAMPION_FILE
        return path.read_text().strip() or None if path.is_file() else None

    def set_champion(self, baseline: str, version: str) -> None:
        """Record which cached version is the champion (survives restarts; atomic replace)."""
        base_dir = self.root / dir_name(baseline)
        base_dir.mkdir(parents=True, exist_ok=True)
        tmp = base_dir / f".{CHAMPION_FILE}.{uuid.uuid4().hex}"
        tmp.write_text(dir_name(version))
        tmp.replace(base_dir / CHAMPION_FILE)
        (base_dir / dir_name(version) / STAGED_MARKER).unlink(missing_ok=True)

    def startup_order(self, baseline: str) -> list[Path]:
        """Return cached versions to try at start: the recorded champion first, then newest.

        Versions still marked staged (fetched for a shadow or canary stage) are left out.
        """
        versions = [p for p in self.versions(baseline) if not (p / STAGED_MARKER).is_file()]
        champ = self.champion(baseline)
        first = [p for p in versions if p.name == champ]
        return first + [p for p in versions if p.name != champ]

    def touch(self, version_dir: Path) -> None:
        """Mark a cached version as the newest (e.g. after rolling back to it)."""
        (version_dir / MARKER).write_text(str(time.time_ns()))

    def prune(self, baseline: str, protect: set[str] | None = None) -> list[Path]:
        """Delete all but the newest ``keep`` versions, never one named in ``protect``.

        Returns
        -------
        list[Path]
            The removed directories.
        """
        protect = protect or set()
        removed = []
        for path in self.versions(baseline)[self.keep :]:
            if path.name in protect:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        return removed
