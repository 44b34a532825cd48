"""Publish exported baselines to the hub registry: artifact, recipe, model and version.

This lives in ``federation`` because it needs the hub client, and ``baselines`` may not import
``federation`` (import-linter layers). ``federation.baselines_cli`` mounts it as
``millwright baselines publish`` next to the commands of ``baselines.cli``.

Every step is idempotent: the artifact is content-addressed, the baseline model and the recipe
are reused when they exist with the same content, and the version label carries the training
fingerprint, so publishing the same export twice registers nothing new.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from baselines.export import read_metadata
from baselines.recipes import Recipe
from policies import Gate, ScopeLevel

if TYPE_CHECKING:
    from federation.hub_client import HubClient

MEDIA_TYPE = "application/vnd.millwright.openvino-export+tar+gzip"


@dataclass(frozen=True)
class Published:
    """What the hub holds for one exported baseline."""

    model: str
    version: str
    version_id: int
    recipe_id: int
    artifact_digest: str
    plant: str | None


def pack_export(directory: Path) -> bytes:
    """Return a reproducible ``.tar.gz`` of an export directory (sorted, zeroed mtimes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path in sorted(p for p in Path(directory).iterdir() if p.is_file()):
            info = tarfile.TarInfo(path.name)
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _hub_gate(gate: Gate) -> dict[str, Any]:
    # The hub names plants in lower case (fd001), as the version tags do.
    doc = gate.model_dump(mode="json")
    if gate.scope.level is ScopeLevel.PLANT and gate.scope.value is not None:
        doc["scope"]["value"] = gate.scope.value.lower()
    return doc


def recipe_spec(recipe: Recipe) -> dict[str, Any]:
    """Map a baselines recipe onto the hub's recipe fields."""
    doc = recipe.to_dict()
    return {
        "preprocessing": {
            **doc["preprocessing"],
            "split": doc["split"],
            "calibration": doc["calibration"],
            "int8_tolerance": doc["int8_tolerance"],
            "plants": doc["plants"],
        },
        "features": doc["features"],
        "architecture": doc["architecture"],
        "hyperparameters": {
            **doc["hyperparameters"],
            "federation": doc["federation"],
            "privacy": doc["privacy"],
        },
        "data_contract_version": f"{recipe.data_contract.name}@{recipe.data_contract.version}",
        "metrics": list(recipe.metrics),
        "gates": [_hub_gate(g) for g in recipe.promotion_gates],
        "description": f"{recipe.recipe_id}: {recipe.description}"[:2000],
    }


def _published_recipe_id(client: HubClient, recipe: Recipe) -> int:
    from federation.schemas.recipes import RecipeCreate

    spec = recipe_spec(recipe)
    wanted = RecipeCreate(name=recipe.name, **spec)
    for existing in client.iter_recipes(name=recipe.name, status="published"):
        same = all(getattr(existing, key) == getattr(wanted, key) for key in spec)
        if same:
            return int(existing.id)
    created = client.create_recipe(wanted)
    return int(client.publish_recipe(created.id).id)


def _ensure_model(client: HubClient, name: str, recipe: Recipe) -> None:
    from federation.errors import Conflict, NotFound
    from federation.schemas.registry import BaselineModelCreate

    try:
        client.get_model(name)
        return
    except NotFound:
        pass
    try:
        client.create_model(
            BaselineModelCreate(
                name=name,
                task=recipe.task,
                dataset=recipe.baseline.value,
                description=recipe.description[:2000],
            )
        )
    except Conflict:
        pass  # created concurrently with the same name


def _float_metrics(meta: dict[str, Any], plant: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for variant, metrics in meta.get("metrics", {}).items():
        for key, value in metrics.items():
            if isinstance(value, float | int) and value == value:
                out[key if variant == "torch" else f"{variant}.{key}"] = float(value)
    if plant is not None and "rmse" in out:
        # Versions published before policies/ carried the plant-qualified name its gates
        # used (rmse.fd001); kept so the registry's metric keys stay the same.
        out[f"rmse.{plant.lower()}"] = out["rmse"]
    return out


def publish_export(client: HubClient, export_dir: Path, *, code_version: str = "") -> Published:
    """Publish one export directory (what ``millwright baselines export`` wrote).

    Parameters
    ----------
    client
        A hub client authorized to write the registry.
    export_dir
        Directory with ``metadata.json``, ``recipe.json`` and the IR files.
    code_version
        Free-form code version recorded on the model version (e.g. a git commit).

    Returns
    -------
    Published
        Model name, version label and ids as the hub stored them.
    """
    from federation.schemas.registry import VersionCreate

    meta = read_metadata(export_dir)
    recipe = Recipe.model_validate_json((Path(export_dir) / "recipe.json").read_text())
    plant = meta.get("plant")
    model_name = recipe.name
    _ensure_model(client, model_name, recipe)
    recipe_id = _published_recipe_id(client, recipe)
    artifact = client.upload_artifact(pack_export(Path(export_dir)), media_type=MEDIA_TYPE)
    label = f"{recipe.version}-{(plant or 'all').lower()}-{meta['fingerprint'][:12]}"
    tags = {
        "baseline": recipe.baseline.value,
        "plant": (plant or "all").lower(),
        "recipe": recipe.recipe_id,
        "format": "openvino-ir",
        "precisions": ",".join(sorted(meta["files"])),
    }
    version = client.create_version(
        VersionCreate(
            model=model_name,
            version=label,
            recipe_id=recipe_id,
            artifact_digest=artifact.digest,
            training_data_fingerprint=meta["fingerprint"],
            code_version=code_version,
            hyperparameters=recipe.for_plant(plant).hyperparameters.model_dump(mode="json"),
            metrics=_float_metrics(meta, plant),
            tags=tags,
            description=f"{recipe.recipe_id} trained on {plant or 'all lines'}",
        )
    )
    return Published(model_name, label, int(version.id), recipe_id, artifact.digest, plant)


__all__ = ["MEDIA_TYPE", "Published", "pack_export", "publish_export", "recipe_spec"]
