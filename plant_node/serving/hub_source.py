"""A :class:`~plant_node.serving.sync.ModelSource` over the hub client: assignments + artifacts.

The hub assigns model versions to a plant under aliases and stores each version's export as a
content-addressed artifact (a tar.gz of the ``baselines.export`` directory). This adapter
lists the plant's assignments and unpacks an artifact into the directory the cache installs
from; the cache then verifies every file's sha256 before anything loads it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Protocol

from plant_node.serving.archive import ArchiveLimits, safe_extract
from plant_node.serving.sync import Assignment

BASELINE_PREFIXES: tuple[str, ...] = ("cmapss", "ai4i")


class HubModels(Protocol):
    """The part of ``federation.hub_client.HubClient`` model sync needs."""

    def get_assignments(self, plant_id: str) -> Any:
        """Return an ``AssignmentList`` (``items`` with model, alias, version, digest)."""
        ...

    def download_artifact(self, digest: str, dest: Path) -> int:
        """Stream an artifact to ``dest`` and verify its sha256."""
        ...


def baseline_of(model_name: str) -> str | None:
    """Map a registry model name (``cmapss-fd001``, ``ai4i``) to the baseline it serves."""
    lowered = model_name.lower()
    return next((b for b in BASELINE_PREFIXES if lowered.startswith(b)), None)


class HubModelSource:
    """Assignments and artifacts of one plant, from the hub.

    Parameters
    ----------
    client
        The hub client.
    plant_id
        This node's plant id.
    limits
        Caps of an unpacked artifact (size, members, compression ratio).
    """

    def __init__(
        self, client: HubModels, plant_id: str, limits: ArchiveLimits | None = None
    ) -> None:
        self._client = client
        self._plant_id = plant_id
        self._limits = limits or ArchiveLimits()
        self._digests: dict[tuple[str, str], str] = {}

    def list_assignments(self) -> list[Assignment]:
        """Return the plant's assignments that carry an artifact and map to a baseline."""
        out = []
        for item in self._client.get_assignments(self._plant_id).items:
            baseline = baseline_of(item.model)
            if baseline is None or not item.artifact_digest:
                continue
            self._digests[(item.model, item.version)] = item.artifact_digest
            out.append(Assignment(baseline, str(item.alias), item.model, item.version))
        return out

    def download(self, assignment: Assignment, dest_dir: Path) -> None:
        """Fetch the artifact of ``assignment`` and unpack it into ``dest_dir``.

        Raises
        ------
        KeyError
            If the assignment was not listed first.
        tarfile.TarError
            If the artifact is not a tar archive.
        ArchiveRefused
            If it breaks a limit or holds a link, device or escaping path (nothing is kept).
        """
        digest = self._digests[(assignment.name, assignment.version)]
        with tempfile.TemporaryDirectory() as tmp:
            blob = Path(tmp) / "artifact"
            self._client.download_artifact(digest, blob)
            safe_extract(blob, dest_dir, self._limits)
        inner = [p for p in dest_dir.iterdir() if p.is_dir()]
        if not any(dest_dir.glob("*.json")) and len(inner) == 1:
            for path in inner[0].iterdir():  # archive wrapped the export in one folder
                path.rename(dest_dir / path.name)
            inner[0].rmdir()
