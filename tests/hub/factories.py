"""Builders of hub objects; they go through the services, never raw inserts."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.orm import Session

from federation.schemas.recipes import RecipeCreate
from federation.schemas.registry import (
    BaselineModelCreate,
    HardwareProfile,
    PlantCreate,
    VersionCreate,
    VersionRead,
)
from hub.recipes import service as recipe_service
from hub.recipes.models import Recipe
from hub.registry import service as registry_service
from hub.registry.models import BaselineModel, Plant


def plant(session: Session, plant_id: str = "fd001", **overrides: Any) -> Plant:
    fields: dict[str, Any] = {
        "id": plant_id,
        "name": f"Plant {plant_id}",
        "site": "Test site",
        "lines": ["line-1"],
        "hardware_profile": HardwareProfile(cpu="Atom x6425E", cores=4, memory_gb=8),
    }
    fields.update(overrides)
    return registry_service.create_plant(
        session=session, plant_in=PlantCreate(**fields), actor="test"
    )


def model(session: Session, name: str = "turbofan-rul", **overrides: Any) -> BaselineModel:
    fields: dict[str, Any] = {"name": name, "task": "rul_regression", "dataset": "cmapss"}
    fields.update(overrides)
    return registry_service.create_model(
        session=session, model_in=BaselineModelCreate(**fields), actor="test"
    )


def recipe(
    session: Session, name: str = "turbofan-lstm", publish: bool = True, **overrides: Any
) -> Recipe:
    fields: dict[str, Any] = {
        "name": name,
        "preprocessing": {"window": 30, "scaler": "minmax"},
        "features": {"sensors": ["s2", "s3", "s4"]},
        "architecture": {"type": "lstm", "hidden": 64},
        "hyperparameters": {"lr": 0.001, "epochs": 20},
        "data_contract_version": "cmapss/1",
        "metrics": ["rmse"],
        "gates": [{"metric": "rmse", "op": "<=", "threshold": 20.0}],
    }
    fields.update(overrides)
    row = recipe_service.create_recipe(
        session=session, recipe_in=RecipeCreate(**fields), actor="test"
    )
    if publish:
        row = recipe_service.publish_recipe(session=session, recipe_id=row.id)
    return row


def version_in(
    model_name: str = "turbofan-rul", label: str = "1.0", **overrides: Any
) -> VersionCreate:
    fields: dict[str, Any] = {
        "model": model_name,
        "version": label,
        "training_data_fingerprint": hashlib.sha256(label.encode()).hexdigest()[:16],
        "code_version": "abc1234",
        "hyperparameters": {"lr": 0.001, "epochs": 20},
        "metrics": {"rmse": 18.5},
        "tags": {"stage": "candidate"},
    }
    fields.update(overrides)
    return VersionCreate(**fields)


def version(
    session: Session, model_name: str = "turbofan-rul", label: str = "1.0", **overrides: Any
) -> VersionRead:
    return registry_service.create_version(
        session=session, version_in=version_in(model_name, label, **overrides), actor="test"
    )
