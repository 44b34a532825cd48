"""FedAvg (McMahan et al., 2017) with Millwright's participation and update checks."""

from __future__ import annotations

from flwr.serverapp.strategy import FedAvg

from federation.strategies.guard import RoundGuard


class GuardedFedAvg(RoundGuard, FedAvg):
    """Sample-weighted average of the valid plant updates."""
