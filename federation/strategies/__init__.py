"""Millwright's federated strategies, one per file, selected by the ``strategy`` run-config key.

Each subclasses a ``flwr.serverapp.strategy`` class through :class:`RoundGuard`
(participation, update validation, records). Imported only by the ServerApp and tests.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, cast

from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, Strategy

from federation.flower.results import RunRecorder
from federation.strategies.fedavg import GuardedFedAvg
from federation.strategies.fedmedian import GuardedFedMedian
from federation.strategies.fedprox import GuardedFedProx
from federation.strategies.fedtrimmedavg import GuardedFedTrimmedAvg
from federation.strategies.guard import ParticipationError, RoundGuard


class StrategyName(StrEnum):
    """Values of the ``strategy`` run-config key."""

    FEDAVG = "fedavg"
    FEDPROX = "fedprox"
    FEDTRIMMEDAVG = "fedtrimmedavg"
    FEDMEDIAN = "fedmedian"


def build_strategy(
    name: str,
    *,
    recorder: RunRecorder,
    min_participants: int,
    max_update_norm: float | None = None,
    node_wait_timeout: float = 60.0,
    node_plants: dict[int, str] | None = None,
    plants: list[str] | None = None,
    proximal_mu: float = 0.01,
    trim_beta: float = 0.2,
    dp_noise_multiplier: float = 0.0,
    dp_clipping_norm: float = 0.0,
) -> tuple[Strategy, RoundGuard]:
    """Build the strategy named by run config.

    Parameters
    ----------
    name : str
        One of :class:`StrategyName`.
    recorder, min_participants, max_update_norm, node_wait_timeout, node_plants, plants
        See :class:`RoundGuard`.
    proximal_mu : float
        FedProx proximal weight.
    trim_beta : float
        FedTrimmedAvg tail fraction cut on each side.
    dp_noise_multiplier, dp_clipping_norm : float
        Client-side DP (fixed clipping on the plant, Gaussian noise on the server) when
        both are positive; the ClientApp's clipping mod reads the norm from the config.

    Returns
    -------
    tuple[Strategy, RoundGuard]
        The strategy to ``start`` (possibly DP-wrapped) and the guarded inner strategy.

    Raises
    ------
    ValueError
        If ``name`` is not a known strategy.
    """
    common: dict[str, Any] = {
        "recorder": recorder,
        "min_participants": min_participants,
        "max_update_norm": max_update_norm,
        "node_wait_timeout": node_wait_timeout,
        "node_plants": node_plants,
        "plants": plants,
    }
    try:
        chosen = StrategyName(name)
    except ValueError:
        known = ", ".join(s.value for s in StrategyName)
        raise ValueError(f"unknown strategy {name!r} (known: {known})") from None
    inner: RoundGuard
    if chosen is StrategyName.FEDAVG:
        inner = GuardedFedAvg(**common)
    elif chosen is StrategyName.FEDPROX:
        inner = GuardedFedProx(proximal_mu=proximal_mu, **common)
    elif chosen is StrategyName.FEDTRIMMEDAVG:
        inner = GuardedFedTrimmedAvg(beta=trim_beta, **common)
    else:
        inner = GuardedFedMedian(**common)
    strategy: Strategy = cast(Strategy, inner)
    if dp_noise_multiplier > 0 and dp_clipping_norm > 0:
        strategy = DifferentialPrivacyClientSideFixedClipping(
            strategy,
            noise_multiplier=dp_noise_multiplier,
            clipping_norm=dp_clipping_norm,
            num_sampled_clients=min_participants,
        )
    return strategy, inner


__all__ = [
    "GuardedFedAvg",
    "GuardedFedMedian",
    "GuardedFedProx",
    "GuardedFedTrimmedAvg",
    "ParticipationError",
    "RoundGuard",
    "RunRecorder",
    "StrategyName",
    "build_strategy",
]
