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
    """FD002 (6 operating conditions), first 12 train and test units."""
    return load_plant_data("cmapss", "FD002", max_units=12)


@pytest.fixture(scope="session")
def ai4i_data() -> PlantData:
    return load_plant_data("ai4i")


def tiny(recipe: Recipe, epochs: int = 2) -> Recipe:
    hp = recipe.hyperparameters.model_copy(update={"epochs": epochs})
    return recipe.model_copy(update={"hyperparameters": hp})


@pytest.fixture(scope="session")
def tiny_cmapss_recipe() -> Recipe:
    return tiny(cmapss_recipe())


@pytest.fixture(scope="session")
def tiny_ai4i_recipe() -> Recipe:
    return tiny(ai4i_recipe(), epochs=3)
