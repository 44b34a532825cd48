"""Model sync: fetch assigned versions from the hub into the cache, or start from the cache.

The hub may be unreachable for days; the node must still start and serve what it last had.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from plant_node.serving.cache import ModelCache, dir_name
from plant_node.serving.runtime import LoadedModel, ModelRuntime

log = logging.getLogger("millwright.node.sync")


@dataclass(frozen=True)
class Assignment:
    """One model version the hub assigns to this plant under an alias."""

    baseline: str
    alias: str  # champion | challenger | shadow
    name: str
    version: str


class ModelSource(Protocol):
    """Where assignments and artifacts come from (the hub client once it is merged)."""

    def list_assignments(self) -> list[Assignment]:
        """Return this plant's current assignments."""
        ...

    def download(self, assignment: Assignment, dest_dir: Path) -> None:
        """Write the exported model directory of ``assignment`` into ``dest_dir``."""
        ...


def fetch_into_cache(
    cache: ModelCache, source: ModelSource, assignment: Assignment, *, staged: bool = False
) -> Path:
    """Download ``assignment`` into the cache, verified, unless it is cached; return its folder.

    :meth:`ModelCache.install` verifies every file's sha256 first. ``staged`` marks a version
    fetched to be staged as a challenger, not to serve (see :mod:`plant_node.serving.cache`).

    Raises
    ------
    Exception
        Whatever the download or the verification raised (nothing is installed then).
    """
    cached = {p.name: p for p in cache.versions(assignment.baseline)}
    found = cached.get(dir_name(assignment.version))
    if found is not None:
        return found
    with tempfile.TemporaryDirectory(dir=cache.root) as tmp:
        source.download(assignment, Path(tmp))
        return cache.install(
            Path(tmp),
            assignment.version,
            assignment.baseline,
            registry_model=assignment.name,
            staged=staged,
        )


def start_from_cache(runtime: ModelRuntime, cache: ModelCache) -> list[str]:
    """Load the newest cached version that verifies and compiles, and a previous one behind it.

    Returns
    -------
    list[str]
        Versions loaded, current first.
    """
    loaded: list[LoadedModel] = []
    for version_dir in cache.startup_order(runtime.baseline):
        try:
            loaded.append(runtime.load(version_dir))
        except Exception as exc:  # a damaged cache entry must not stop the node
            log.warning("cached %s %s unusable: %s", runtime.baseline, version_dir.name, exc)
            continue
        if len(loaded) == 2:
            break
    if loaded:
        runtime.activate(loaded[0])
        runtime.set_previous(loaded[1] if len(loaded) > 1 else None)
    return [m.version for m in loaded]


def sync_champion(
    runtime: ModelRuntime, cache: ModelCache, source: ModelSource | None
) -> tuple[str, list[str]]:
    """Install and activate the hub's champion; fall back to the cache when the hub is away.

    Returns
    -------
    tuple[str, list[str]]
        ``("hub" | "cache", versions loaded)``.
    """
    if source is not None:
        try:
            wanted = [
                a
                for a in source.list_assignments()
                if a.baseline == runtime.baseline and a.alias == "champion"
            ]
            if wanted:
                assignment = wanted[0]
                fetch_into_cache(cache, source, assignment)
                cache.set_champion(runtime.baseline, assignment.version)
                versions = start_from_cache(runtime, cache)
                cache.prune(runtime.baseline, protect=set(versions))
                return "hub", versions
        except Exception as exc:
            log.warning("hub unreachable for %s, serving from cache: %s", runtime.baseline, exc)
    return "cache", start_from_cache(runtime, cache)
