"""Named numpy weights <-> Flower ``ArrayRecord`` (numpy is the exchange format)."""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord

from federation.apps.tasks import Weights


def to_record(weights: Weights) -> ArrayRecord:
    """Wrap named arrays, keeping their names, order and shapes (0-d scalars too)."""
    # ``np.ascontiguousarray`` would turn a 0-d buffer into shape (1,).
    return ArrayRecord(
        {name: Array(np.array(a, order="C", copy=True)) for name, a in weights.items()}
    )


def from_record(record: ArrayRecord) -> Weights:
    """Unwrap an ``ArrayRecord`` into named numpy arrays."""
    return {name: array.numpy() for name, array in record.items()}


#: Name prefix of the copies of a centrally trained ensemble (``baselines.models.RulEnsemble``).
ENSEMBLE_PREFIX = "ensemble."


def first_copy(weights: Weights) -> Weights:
    """Return the single network a campaign federates, from a parent export's weights.

    A published baseline may average several copies of the architecture (``ensemble.<i>.``
    names); federated rounds exchange one network, so a campaign starts from the first copy
    (a fully trained network of the same recipe). Other weights are returned unchanged.
    """
    first = f"{ENSEMBLE_PREFIX}0."
    if not any(name.startswith(first) for name in weights):
        return weights
    return {name.removeprefix(first): a for name, a in weights.items() if name.startswith(first)}
