"""FedAvgM (Hsu et al., 2019): FedAvg with server momentum, with Millwright's checks.

The server treats ``global - average`` as a pseudo-gradient and takes an SGD-with-momentum
step on it, so a few short rounds move the global model further than plain averaging.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvgM

from federation.strategies.guard import RoundGuard


class GuardedFedAvgM(RoundGuard, FedAvgM):
    """Server SGD with momentum on the average of the valid plant updates."""

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Step from the model actually sent this round.

        Flower's FedAvgM keeps its own copy of the global weights after round 1; a wrapper
        that changes the aggregate afterwards (or a resumed run) would be silently ignored.
        """
        self.current_arrays = arrays
        return super().configure_train(server_round, arrays, config, grid)
