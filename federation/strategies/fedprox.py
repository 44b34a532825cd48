"""FedProx (Li et al., 2020) for non-IID plants, with Millwright's checks.

The server sends ``proximal-mu`` in the train config; the ClientApp adds
``mu/2 * ||w - w_global||^2`` to its local loss.
"""

from __future__ import annotations

from flwr.serverapp.strategy import FedProx

from federation.strategies.guard import RoundGuard


class GuardedFedProx(RoundGuard, FedProx):
    """FedAvg aggregation plus a proximal term on the plants' local objective."""
