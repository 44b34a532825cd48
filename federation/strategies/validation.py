"""Server-side checks on one plant's training update, before it can reach aggregation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from federation.schemas.federated_run import RejectReason

NDArrays = list[npt.NDArray[np.generic]]


@dataclass(frozen=True)
class Verdict:
    """Outcome of :func:`check_update`: ``reason`` is None when the update is accepted."""

    reason: RejectReason | None
    update_norm: float | None

    @property
    def accepted(self) -> bool:
        """True if the update may be aggregated."""
        return self.reason is None


def update_norm(global_arrays: NDArrays, local_arrays: NDArrays) -> float:
    """Return the global L2 norm of ``local - global`` over all arrays."""
    total = 0.0
    for g, w in zip(global_arrays, local_arrays, strict=True):
        delta = np.asarray(w, dtype=np.float64) - np.asarray(g, dtype=np.float64)
        total += float(np.sum(delta * delta))
    return float(np.sqrt(total))


def check_update(
    global_arrays: NDArrays, local_arrays: NDArrays, *, max_update_norm: float | None
) -> Verdict:
    """Decide whether a plant's returned weights may be aggregated.

    Parameters
    ----------
    global_arrays : list of ndarray
        The global weights the plant was sent this round.
    local_arrays : list of ndarray
        The weights the plant sent back.
    max_update_norm : float | None
        Largest allowed global L2 norm of the update; None or 0 disables the bound.

    Returns
    -------
    Verdict
        ``reason`` is ``MALFORMED`` for shape mismatches, ``NON_FINITE`` for NaN/Inf,
        ``NORM_EXCEEDED`` beyond the bound, otherwise None.
    """
    if len(global_arrays) != len(local_arrays) or any(
        np.shape(g) != np.shape(w) for g, w in zip(global_arrays, local_arrays, strict=False)
    ):
        return Verdict(RejectReason.MALFORMED, None)
    if not all(np.all(np.isfinite(np.asarray(w, dtype=np.float64))) for w in local_arrays):
        return Verdict(RejectReason.NON_FINITE, None)
    norm = update_norm(global_arrays, local_arrays)
    if not np.isfinite(norm):
        return Verdict(RejectReason.NON_FINITE, None)
    if max_update_norm and norm > max_update_norm:
        return Verdict(RejectReason.NORM_EXCEEDED, norm)
    return Verdict(None, norm)
