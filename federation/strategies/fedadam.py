"""FedAdam (Reddi et al., 2021): an Adam step on the averaged update, with Millwright's checks."""

from __future__ import annotations

from flwr.serverapp.strategy import FedAdam

from federation.strategies.guard import RoundGuard


class GuardedFedAdam(RoundGuard, FedAdam):
    """Server Adam on ``average - global`` of the valid plant updates (per-weight step sizes)."""
