"""Shared fixtures of the baselines tests: small real subsets and tiny trained models, cached."""

from __future__ import annotations

import pytest
import torch

from baselines.plants import PlantData, load_plant_data
from baselines.recipes import Recipe, ai4i_recipe, cmapss_recipe


@pytest.fixture(autouse=True, scope="session")
def _threads() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def cmapss_small() -> PlantData:
    """FD002 (6 operating conditions), first 8 train and test units."""
    return load_plant_data("cmapss", "FD002", max_units=8)


@pytest.fixture(scope="session")
def ai4i_data() -> PlantData:
    return load_plant_data("ai4i")


def tiny(recipe: Recipe, epochs: int = 2) -> Recipe:
    hp = recipe.hyperparameters.model_copy(update={"epochs": epochs, "overrides": {}})
    return recipe.model_copy(update={"hyperparameters": hp})


@pytest.fixture(scope="session")
def tiny_cmapss_recipe() -> Recipe:
    return tiny(cmapss_recipe())


@pytest.fixture(scope="session")
def tiny_ai4i_recipe() -> Recipe:
    return tiny(ai4i_recipe(), epochs=3)


def small_export_recipe(recipe: Recipe, epochs: int) -> Recipe:
    tol = recipe.int8_tolerance.model_copy(update={"calibration_samples": 64})
    return tiny(recipe, epochs).model_copy(update={"int8_tolerance": tol})


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def trained_cmapss(model_root):
    from baselines.models.pipeline import train_baseline

    recipe = small_export_recipe(cmapss_recipe(), epochs=2)
    return train_baseline("cmapss", "FD002", recipe=recipe, root=model_root, max_units=8)


@pytest.fixture(scope="session")
def trained_cmapss_ensemble(model_root):
    """The FD002 test model as a three-copy ensemble (what FD001 / FD003 publish)."""
    from baselines.models.pipeline import train_baseline

    recipe = small_export_recipe(cmapss_recipe(), epochs=2)
    hp = recipe.hyperparameters.model_copy(update={"ensemble": 3})
    recipe = recipe.model_copy(update={"hyperparameters": hp})
    return train_baseline(
        "cmapss", "FD002", recipe=recipe, root=model_root / "ensemble", max_units=8
    )


@pytest.fixture(scope="session")
def exported_cmapss_ensemble(trained_cmapss_ensemble):
    from baselines.export.convert import export_baseline

    out = trained_cmapss_ensemble.directory / "export"
    export_baseline(trained_cmapss_ensemble, out, strict=False)
    return out


@pytest.fixture(scope="session")
def trained_ai4i(model_root):
    from baselines.models.pipeline import train_baseline

    recipe = small_export_recipe(ai4i_recipe(), epochs=10)
    return train_baseline("ai4i", None, recipe=recipe, root=model_root)


@pytest.fixture(scope="session")
def exported_cmapss(trained_cmapss):
    from baselines.export.convert import export_baseline

    out = trained_cmapss.directory / "export"
    export_baseline(trained_cmapss, out, strict=False)
    return out


@pytest.fixture(scope="session")
def exported_ai4i(trained_ai4i):
    from baselines.export.convert import export_baseline

    out = trained_ai4i.directory / "export"
    export_baseline(trained_ai4i, out, strict=False)
    return out
