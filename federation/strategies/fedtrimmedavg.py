"""FedTrimmedAvg (Yin et al., 2018): coordinate-wise trimmed mean, with Millwright's checks."""

from __future__ import annotations

from flwr.serverapp.strategy import FedTrimmedAvg

from federation.strategies.guard import RoundGuard


class GuardedFedTrimmedAvg(RoundGuard, FedTrimmedAvg):
    """Drops the ``beta`` tails of each coordinate before averaging."""
