"""Staged rollout of a challenger: shadow, canary or full, with automatic rollback.

The :class:`RolloutGuard` of a baseline watches the challenger's answers (errors, latency,
disagreement with the champion on the same input) and decides to roll it back once it has
seen ``min_samples`` answers and any limit is breached. It is pure bookkeeping; the serving
flow acts on its verdict and records the reason in the outbox.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from plant_node.config import RolloutMode


@dataclass(frozen=True)
class RolloutLimits:
    """Breach limits of a challenger."""

    min_samples: int = 50
    max_error_rate: float = 0.05
    max_p99_ms: float = 50.0
    max_disagreement: float = 0.2
    # Regression answers disagree when they differ by more than this fraction of the champion.
    regression_tolerance: float = 0.25


@dataclass(frozen=True)
class RolloutStatus:
    """A snapshot of the challenger's record."""

    version: str
    mode: RolloutMode
    samples: int
    errors: int
    error_rate: float
    p99_ms: float
    disagreement: float
    breach: str | None
    #: Cumulative since the version was staged (never windowed): the rows it answered, the
    #: rows it failed on (the champion answered them), the rows the line sent while it was
    #: staged (a canary answers only its share of them) and the rows the data contract
    #: refused meanwhile.
    rows: int = 0
    failed_rows: int = 0
    offered_rows: int = 0
    refused_rows: int = 0


class RolloutGuard:
    """Counts a challenger's answers in a sliding window and names the first limit breached.

    Parameters
    ----------
    version
        The challenger version being watched.
    mode
        Rollout mode it runs in.
    limits
        Breach limits.
    window
        How many recent answers the rates are computed over.
    """

    def __init__(
        self, version: str, mode: RolloutMode, limits: RolloutLimits, window: int = 1000
    ) -> None:
        self.version = version
        self.mode = mode
        self.limits = limits
        self._errors: deque[bool] = deque(maxlen=window)
        self._latency: deque[float] = deque(maxlen=window)
        self._disagree: deque[bool] = deque(maxlen=window)
        self._lock = threading.Lock()
        self._rows = 0
        self._failed_rows = 0
        self._offered_rows = 0
        self._refused_rows = 0

    def carry(self, other: RolloutGuard) -> None:
        """Continue ``other``'s record (the same version staged again, e.g. shadow -> canary)."""
        with other._lock:
            state = (
                list(other._errors), list(other._latency), list(other._disagree),
                other._rows, other._failed_rows, other._offered_rows, other._refused_rows,
            )  # fmt: skip
        with self._lock:
            self._errors.extend(state[0])
            self._latency.extend(state[1])
            self._disagree.extend(state[2])
            self._rows, self._failed_rows, self._offered_rows, self._refused_rows = state[3:]

    def offer(self, rows: int) -> None:
        """Count rows the line sent while this version is staged (before the canary's draw)."""
        with self._lock:
            self._offered_rows += rows

    def refuse(self, rows: int) -> None:
        """Count rows the data contract refused while this version is staged."""
        with self._lock:
            self._refused_rows += rows

    def record_error(self, rows: int = 1) -> None:
        """Count a challenger failure (it raised or returned garbage) on ``rows`` rows."""
        with self._lock:
            self._errors.append(True)
            self._rows += rows
            self._failed_rows += rows

    def record(
        self,
        latency_ms: float,
        challenger: np.ndarray,
        champion: np.ndarray | None,
        task: str,
        rows: int = 1,
    ) -> None:
        """Count a challenger answer on ``rows`` rows, and agreement if the champion scored them."""
        with self._lock:
            self._errors.append(False)
            self._rows += rows
            self._latency.append(latency_ms)
            if champion is None:
                return
            if task == "classification":
                differ = (challenger >= 0.5) != (champion >= 0.5)
            else:
                scale = np.maximum(np.abs(champion), 1.0)
                differ = np.abs(challenger - champion) > self.limits.regression_tolerance * scale
            self._disagree.extend(bool(d) for d in np.atleast_1d(differ))

    def status(self) -> RolloutStatus:
        """Return the current record and the first breached limit, if any."""
        with self._lock:
            n = len(self._errors)
            errors = sum(self._errors)
            rate = errors / n if n else 0.0
            p99 = float(np.percentile(list(self._latency), 99)) if self._latency else 0.0
            dis = sum(self._disagree) / len(self._disagree) if self._disagree else 0.0
            totals = (self._rows, self._failed_rows, self._offered_rows, self._refused_rows)
        breach = None
        lim = self.limits
        if n >= lim.min_samples:
            if rate > lim.max_error_rate:
                breach = f"error rate {rate:.3f} > {lim.max_error_rate}"
            elif p99 > lim.max_p99_ms:
                breach = f"p99 latency {p99:.1f} ms > {lim.max_p99_ms} ms"
            elif dis > lim.max_disagreement:
                breach = f"disagreement with champion {dis:.3f} > {lim.max_disagreement}"
        return RolloutStatus(self.version, self.mode, n, errors, rate, p99, dis, breach, *totals)
