"""FedMedian (Yin et al., 2018): coordinate-wise median, with Millwright's checks."""

from __future__ import annotations

from flwr.serverapp.strategy import FedMedian

from federation.strategies.guard import RoundGuard


class GuardedFedMedian(RoundGuard, FedMedian):
    """Coordinate-wise median of the valid plant updates (robust with few plants)."""
