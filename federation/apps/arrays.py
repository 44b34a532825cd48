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
