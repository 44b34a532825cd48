"""Rule-based fallbacks: what answers when no model version can.

A :class:`FallbackRule` scores raw line records with documented physical rules (the recipe's
``fallback``), never with a model, so it still works when every model file is broken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Rows = Sequence[Mapping[str, Any]]


@runtime_checkable
class FallbackRule(Protocol):
    """Scores records without a model.

    ``predict`` MUST return one score per record, on the same scale as the model's output
    (a failure probability in [0, 1] for classification, a RUL in cycles for regression),
    and MUST NOT raise on records that passed the data contract.
    """

    name: str

    def predict(self, rows: Rows) -> npt.NDArray[np.float64]:
        """Return one score per record."""
        ...


class ConstantRule:
    """The last resort: a fixed score (e.g. "assume healthy" or the base failure rate).

    Parameters
    ----------
    value
        Score returned for every record.
    name
        Rule name reported in responses.
    """

    def __init__(self, value: float, name: str = "constant") -> None:
        self.value = float(value)
        self.name = name

    def predict(self, rows: Rows) -> npt.NDArray[np.float64]:
        """Return ``value`` for every record."""
        return np.full(len(rows), self.value, dtype=np.float64)


class CallableRule:
    """Adapts any ``rows -> scores`` function (e.g. a rule from ``baselines.rules``).

    Parameters
    ----------
    name
        Rule name reported in responses.
    func
        The scoring function.
    """

    def __init__(self, name: str, func: Any) -> None:
        self.name = name
        self._func = func

    def predict(self, rows: Rows) -> npt.NDArray[np.float64]:
        """Return ``func(rows)`` as a float array."""
        return np.asarray(self._func(rows), dtype=np.float64).reshape(len(rows))
