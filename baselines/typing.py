"""Array and frame aliases shared by the baselines package (numpy only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

NDArray: TypeAlias = npt.NDArray[Any]
FloatArray: TypeAlias = npt.NDArray[np.floating[Any]]
IntArray: TypeAlias = npt.NDArray[np.integer[Any]]

#: Anything whose columns can be read by name: a pandas DataFrame or a dict of arrays.
ColumnFrame: TypeAlias = Mapping[str, Any]
#: Raw records as they arrive on the line: one mapping of column name to value per row.
Rows: TypeAlias = Sequence[Mapping[str, Any]]

__all__ = ["ColumnFrame", "FloatArray", "IntArray", "NDArray", "Rows"]
