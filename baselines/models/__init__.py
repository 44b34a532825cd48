"""Torch models of the baselines and the training API the Flower ClientApp calls.

>>> from baselines.models import build_model, get_weights, set_weights, train_local, evaluate
>>> from baselines.models import load_plant_data
"""

from __future__ import annotations

from baselines.models.networks import FailureClassifier, RulEnsemble, RulRegressor, build_network
from baselines.models.training import (
    build_model,
    calibrate,
    evaluate,
    get_weights,
    head_parameter_names,
    predict,
    score_predictions,
    seed_everything,
    set_weights,
    train_local,
    train_members,
    weight_names,
)
from baselines.plants import PlantData, load_plant_data, plants_of

__all__ = [
    "FailureClassifier",
    "PlantData",
    "RulEnsemble",
    "RulRegressor",
    "build_model",
    "build_network",
    "calibrate",
    "evaluate",
    "get_weights",
    "head_parameter_names",
    "load_plant_data",
    "plants_of",
    "predict",
    "score_predictions",
    "seed_everything",
    "set_weights",
    "train_local",
    "train_members",
    "weight_names",
]
