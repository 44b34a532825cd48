"""Versioned recipes: one standard recipe per baseline, serializable to the hub registry."""

from __future__ import annotations

from baselines.recipes.schema import (
    Baseline,
    DataContractRef,
    FederationKnobs,
    GateOp,
    Hyperparameters,
    Int8Tolerance,
    MonitoringKnobs,
    PrivacyKnobs,
    PromotionGate,
    Recipe,
    SplitProtocol,
)
from baselines.recipes.standard import ai4i_recipe, cmapss_recipe, get_recipe

__all__ = [
    "Baseline",
    "DataContractRef",
    "FederationKnobs",
    "GateOp",
    "Hyperparameters",
    "Int8Tolerance",
    "MonitoringKnobs",
    "PrivacyKnobs",
    "PromotionGate",
    "Recipe",
    "SplitProtocol",
    "ai4i_recipe",
    "cmapss_recipe",
    "get_recipe",
]
