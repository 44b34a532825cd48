"""Publishing an export goes through the hub client and is idempotent."""

import json
import types

import pytest

from baselines.export.runtime import FORMAT_VERSION
from baselines.recipes import cmapss_recipe

registry = pytest.importorskip("federation.schemas.registry")
pytest.importorskip("federation.hub_client")

from federation.baselines_publish import pack_export, publish_export, recipe_spec  # noqa: E402
from federation.errors import NotFound  # noqa: E402
from federation.schemas.recipes import RecipeCreate  # noqa: E402


class FakeHub:
    """Records calls; behaves like the hub for the handful of endpoints publish uses."""

    def __init__(self) -> None:
        self.models: dict[str, object] = {}
        self.recipes: list[types.SimpleNamespace] = []
        self.artifacts: dict[str, bytes] = {}
        self.versions: dict[tuple[str, str], object] = {}

    def get_model(self, name):
        if name not in self.models:
            raise NotFound(f"no model {name}")
        return self.models[name]

    def create_model(self, model):
        self.models[model.name] = model
        return model

    def iter_recipes(self, *, name=None, status=None):
        return iter([r for r in self.recipes if r.name == name and r.status == status])

    def create_recipe(self, recipe: RecipeCreate):
        row = types.SimpleNamespace(**recipe.model_dump(), id=len(self.recipes) + 1, status="draft")
        row.gates = recipe.gates
        self.recipes.append(row)
        return row

    def publish_recipe(self, recipe_id):
        row = self.recipes[recipe_id - 1]
        row.status = "published"
        return row

    def upload_artifact(self, source, *, media_type):
        import hashlib

        digest = hashlib.sha256(source).hexdigest()
        self.artifacts[digest] = source
        return types.SimpleNamespace(digest=digest)

    def create_version(self, version):
        key = (version.model, version.version)
        self.versions.setdefault(
            key, types.SimpleNamespace(id=len(self.versions) + 1, body=version)
        )
        return self.versions[key]


@pytest.fixture
def export_dir(tmp_path):
    out = tmp_path / "export"  # the hub fixtures keep their artifact store under tmp_path
    out.mkdir()
    recipe = cmapss_recipe()
    meta = {
        "format_version": FORMAT_VERSION,
        "plant": "FD001",
        "fingerprint": "ab" * 32,
        "files": {"fp32": {}, "int8": {}},
        "metrics": {"torch": {"rmse": 15.0}, "ov_int8": {"rmse": 15.2}},
    }
    (out / "metadata.json").write_text(json.dumps(meta))
    (out / "recipe.json").write_text(recipe.to_json())
    (out / "model_fp32.xml").write_text("<net/>")
    return out


def test_publish_registers_model_recipe_artifact_and_version(export_dir) -> None:
    # Prepare
    hub = FakeHub()
    # Execute
    first = publish_export(hub, export_dir, code_version="abc123")
    second = publish_export(hub, export_dir, code_version="abc123")
    # Assert
    assert first == second
    assert list(hub.models) == ["cmapss-rul-cnn"]
    assert len(hub.recipes) == 1 and hub.recipes[0].status == "published"
    assert first.version.startswith("1.0.0-fd001-abababab")
    (version,) = hub.versions.values()
    assert version.body.training_data_fingerprint == "ab" * 32
    assert version.body.metrics["rmse.fd001"] == 15.0
    assert version.body.tags["plant"] == "fd001"
    assert hub.artifacts[first.artifact_digest] == pack_export(export_dir)


def test_recipe_spec_fits_the_hub_schema() -> None:
    spec = recipe_spec(cmapss_recipe())
    created = RecipeCreate(name="cmapss-rul-cnn", **spec)
    assert {(g.name, g.metric, g.scope.value) for g in created.gates} == {
        ("rmse_fd001", "validation.rmse", "fd001"),
        ("rmse_fd002", "validation.rmse", "fd002"),
        ("rmse_fd003", "validation.rmse", "fd003"),
        ("rmse_fd004", "validation.rmse", "fd004"),
    }


def test_recipes_published_before_policies_still_match() -> None:
    # A hub row written before policies/ stored the plant in the metric name; it loads as the
    # same rules, so publishing again reuses it instead of registering a new recipe.
    spec = recipe_spec(cmapss_recipe())
    legacy = {
        **spec,
        "gates": [
            {"metric": "rmse.fd001", "op": "<=", "threshold": 13.9},
            {"metric": "rmse.fd002", "op": "<=", "threshold": 24.6},
            {"metric": "rmse.fd003", "op": "<=", "threshold": 13.9},
            {"metric": "rmse.fd004", "op": "<=", "threshold": 25.6},
        ],
    }
    assert RecipeCreate(name="r", **legacy).gates == RecipeCreate(name="r", **spec).gates


def test_publish_against_the_real_hub(admin_hub, export_dir) -> None:
    # admin_hub: HubClient over the real hub app (tests/hub/fixtures.py, both backends).
    hub = admin_hub
    first = publish_export(hub, export_dir)
    again = publish_export(hub, export_dir)
    assert again == first
    version = hub.get_version(first.version_id)
    assert version.recipe_id == first.recipe_id
    assert version.artifact_digest == first.artifact_digest
    assert hub.get_recipe(first.recipe_id).status == "published"
