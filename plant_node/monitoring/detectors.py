"""Sequential detectors: two-sided CUSUM on per-chunk statistics, for slow and small changes.

A per-chunk control chart (a drift score over a fixed band) sees each chunk alone, so a
sensor that creeps up a tenth of a sigma per chunk is caught only once one chunk is far
out. A CUSUM accumulates the evidence instead (Page, 1954): with ``z`` the chunk's
statistic standardized by its stable-process mean and spread,

    S+ = max(0, S+ + z - k),   S- = max(0, S- - z - k),

and the detector fires when ``S+`` or ``S-`` passes ``h``. ``k`` is half the shift (in
standard deviations of the per-chunk statistic) the detector is tuned for, ``h`` is set so
the in-control average run length is ``1 / alpha`` for the per-chunk false-alarm rate
``alpha`` the recipe sets, shared over every one-sided detector (Bonferroni), using
Siegmund's approximation of the average run length. :func:`expected_delay` gives the
expected detection delay of a shift from the same approximation.

The statistic per feature is the chunk mean, standardized by the block-bootstrap mean and
spread of :mod:`.calibration` (the spread of the least mixed feed), widened for the
autocorrelation of consecutive chunks; the multivariate reconstruction error is watched
upwards only. nannyml 0.13 has per-chunk thresholds only, and river's detectors (ADWIN,
Page-Hinkley, KSWIN) work on single observations with no false-alarm-rate design, so the
CUSUM is written here: a dozen lines of arithmetic with a published run-length formula.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

#: Siegmund's correction for the overshoot of a normal CUSUM over its limit.
_OVERSHOOT = 1.166
#: Cap of the sums, in multiples of ``h``: a long shift must not take forever to recover.
SUM_CAP = 2.0


def average_run_length(*, k: float, h: float, shift: float = 0.0) -> float:
    """Siegmund's approximation of a one-sided CUSUM's average run length.

    Parameters
    ----------
    k, h
        Reference value and decision limit, in standard deviations of the statistic.
    shift
        Mean of the standardized statistic (0: in control).

    Returns
    -------
    float
        Expected chunks until the detector fires.
    """
    delta = shift - k
    b = h + _OVERSHOOT
    if abs(delta) < 1e-9:
        return b * b
    return (math.exp(-2 * delta * b) + 2 * delta * b - 1) / (2 * delta * delta)


def decision_limit(*, arl0: float, k: float) -> float:
    """Return the ``h`` whose in-control average run length is ``arl0`` (bisection)."""
    lo, hi = 0.0, 50.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if average_run_length(k=k, h=mid) < arl0:
            lo = mid
        else:
            hi = mid
    return hi


def expected_delay(*, k: float, h: float, shift: float) -> float:
    """Return the expected chunks from a sustained shift of ``shift`` sigma to the alarm (>= 1)."""
    return max(1.0, average_run_length(k=k, h=h, shift=shift))


@dataclass(frozen=True)
class Cusum:
    """One two-sided (or upper) CUSUM on a per-chunk statistic.

    Parameters
    ----------
    column
        What it watches: a feature, the prediction column, or ``"*"`` (multivariate error).
    mean, std
        Stable-process mean and (autocorrelation-widened) standard deviation of the
        statistic.
    k, h
        Reference value and decision limit, in units of ``std``.
    two_sided
        Watch decreases too (not for the reconstruction error, where lower is better).
    """

    column: str
    mean: float
    std: float
    k: float
    h: float
    two_sided: bool = True

    def standardize(self, value: float) -> float:
        """Return ``(value - mean) / std``."""
        return (value - self.mean) / self.std


@dataclass(frozen=True)
class CusumState:
    """The sums of one detector, and when they last left zero."""

    upper: float = 0.0
    lower: float = 0.0
    since_chunk: int | None = None


@dataclass(frozen=True)
class DetectorBank:
    """Every sequential detector of a monitor, with its design.

    Parameters
    ----------
    detectors
        One per watched column.
    false_alarm_rate
        Per-chunk false-alarm rate the limits were set for, over all detectors together.
    k
        Reference value (half the standardized shift the design targets).
    row_std
        Row-level standard deviation per column (to express shifts in row sigmas).
    """

    detectors: tuple[Cusum, ...] = ()
    false_alarm_rate: float = 0.002
    k: float = 0.5
    row_std: Mapping[str, float] = field(default_factory=dict)

    def expected_delays(self, shift_sigmas: float = 1.0) -> dict[str, float]:
        """Return the expected chunks to detect a step of ``shift_sigmas`` *row* sigmas.

        The step moves the chunk mean by ``shift_sigmas`` times the column's row-level
        spread (:attr:`row_std`); the result is per detector column.
        """
        out = {}
        for d in self.detectors:
            row = self.row_std.get(d.column, math.nan)
            if math.isfinite(row) and d.std > 0:
                out[d.column] = expected_delay(k=d.k, h=d.h, shift=shift_sigmas * row / d.std)
        return out


def build_detectors(
    chunk_means: Mapping[str, Sequence[float]],
    *,
    columns: Sequence[str],
    row_std: Mapping[str, float],
    false_alarm_rate: float,
    k: float = 0.5,
    upper_only: Sequence[str] = (),
) -> DetectorBank:
    """Build one CUSUM per column whose per-chunk mean has a stable spread.

    Parameters
    ----------
    chunk_means
        ``[mean, std, rho]`` per column (:attr:`.drift.DriftReference.chunk_means`); the
        multivariate error is under ``"*"`` and gets an upper-only detector.
    columns
        Columns to watch (features and prediction), in report order.
    row_std
        Row-level standard deviation per column, for :meth:`DetectorBank.expected_delays`.
    false_alarm_rate
        Per-chunk false-alarm rate shared by every one-sided detector.
    k
        Reference value, in standard deviations of the statistic.
    upper_only
        Columns watched upwards only, like the multivariate error (e.g. the realized loss,
        where lower is better).

    Returns
    -------
    DetectorBank
        The detectors (none for constant columns).
    """
    if not 0 < false_alarm_rate < 1:
        raise ValueError("false_alarm_rate must be in (0, 1)")
    specs = []
    for col in [*columns, "*"]:
        stats = chunk_means.get(col)
        if stats is None or len(stats) < 2:
            continue
        mean, std = float(stats[0]), float(stats[1])
        rho = float(stats[2]) if len(stats) > 2 else 0.0
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            continue
        # the variance of a sum of AR(1) chunk statistics grows by (1 + rho) / (1 - rho)
        widened = std * math.sqrt((1 + rho) / (1 - rho))
        specs.append((col, mean, widened, col != "*" and col not in upper_only))
    sides = sum(2 if two else 1 for *_, two in specs)
    h = decision_limit(arl0=max(1, sides) / false_alarm_rate, k=k)
    detectors = tuple(Cusum(c, m, s, k, h, two) for c, m, s, two in specs)
    return DetectorBank(
        detectors=detectors, false_alarm_rate=false_alarm_rate, k=k, row_std=dict(row_std)
    )


def step(
    detector: Cusum, state: CusumState, value: float, *, chunk: int
) -> tuple[CusumState, float]:
    """Advance one detector by one chunk.

    Parameters
    ----------
    detector
        The detector.
    state
        Its sums after the previous chunk.
    value
        This chunk's statistic (NaN leaves the state unchanged).
    chunk
        Chunk index, remembered as the start of the current excursion.

    Returns
    -------
    tuple[CusumState, float]
        The new sums, and the larger sum over the limit (the detector fires above 1).
    """
    if not math.isfinite(value):
        return state, max(state.upper, state.lower) / detector.h
    z = detector.standardize(value)
    cap = SUM_CAP * detector.h
    upper = min(cap, max(0.0, state.upper + z - detector.k))
    lower = min(cap, max(0.0, state.lower - z - detector.k)) if detector.two_sided else 0.0
    active = upper > 0 or lower > 0
    since = (state.since_chunk if state.since_chunk is not None else chunk) if active else None
    new = replace(state, upper=upper, lower=lower, since_chunk=since)
    return new, max(upper, lower) / detector.h


def step_all(
    bank: DetectorBank, states: Mapping[str, CusumState], values: Mapping[str, float], *, chunk: int
) -> tuple[dict[str, CusumState], dict[str, float]]:
    """Advance every detector of a bank; return the new states and each sum over its limit."""
    new: dict[str, CusumState] = dict(states)
    ratios: dict[str, float] = {}
    for d in bank.detectors:
        new[d.column], ratios[d.column] = step(
            d, states.get(d.column, CusumState()), values.get(d.column, math.nan), chunk=chunk
        )
    return new, ratios


__all__ = [
    "Cusum",
    "CusumState",
    "DetectorBank",
    "average_run_length",
    "build_detectors",
    "decision_limit",
    "expected_delay",
    "step",
    "step_all",
]
