"""Millwright's federated strategies, one per file, selected by the ``strategy`` run-config key.

Each subclasses a ``flwr.serverapp.strategy`` class through :class:`RoundGuard`
(participation, update validation, records). Imported only by the ServerApp and tests.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, cast

from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, Strategy

from federation.flower.results import RunRecorder
from federation.strategies.fedadam import GuardedFedAdam
from federation.strategies.fedavg import GuardedFedAvg
from federation.strategies.fedavgm import GuardedFedAvgM
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
    FEDAVGM = "fedavgm"
    FEDADAM = "fedadam"


#: Strategies that take a server-side optimizer step after averaging. Flower's client-side
#: DP wrapper adds its noise after that step, while the optimizer's state (momentum, Adam
#: moments) is built from the noise-free average and leaks into later rounds: the noise
#: would no longer cover the released models, so DP is refused with these strategies.
SERVER_OPTIMIZERS = frozenset({StrategyName.FEDAVGM, StrategyName.FEDADAM})
#: Default server step sizes: FedAvgM's SGD step on the averaged update is 1 (Hsu et al.);
#: Adam normalizes its step per weight, so FedAdam moves each weight by about eta per round.
SERVER_LEARNING_RATES = {StrategyName.FEDAVGM: 1.0, StrategyName.FEDADAM: 0.01}


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
    server_learning_rate: float | None = None,
    server_momentum: float = 0.9,
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
    server_learning_rate : float | None
        Server step size of FedAvgM (1.0 with no momentum is FedAvg) and FedAdam (``eta``);
        None or 0 takes :data:`SERVER_LEARNING_RATES`.
    server_momentum : float
        FedAvgM server momentum; FedAdam's first-moment decay (``beta_1``).
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
        If ``name`` is not a known strategy, or DP is asked of a server-optimizer strategy.
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
    dp = dp_noise_multiplier > 0 and dp_clipping_norm > 0
    if dp and chosen in SERVER_OPTIMIZERS:
        raise ValueError(
            f"client-side DP cannot be combined with {chosen.value}: Flower adds the noise "
            "after the server optimizer step, whose state is built from noise-free averages"
        )
    if not 0 <= server_momentum < 1:
        raise ValueError(f"server_momentum must be in [0, 1), got {server_momentum}")
    if server_learning_rate is not None and server_learning_rate < 0:
        raise ValueError(f"server_learning_rate must be positive, got {server_learning_rate}")
    server_lr = server_learning_rate or SERVER_LEARNING_RATES.get(chosen, 1.0)
    inner: RoundGuard
    if chosen is StrategyName.FEDAVG:
        inner = GuardedFedAvg(**common)
    elif chosen is StrategyName.FEDPROX:
        inner = GuardedFedProx(proximal_mu=proximal_mu, **common)
    elif chosen is StrategyName.FEDAVGM:
        inner = GuardedFedAvgM(
            server_learning_rate=server_lr, server_momentum=server_momentum, **common
        )
    elif chosen is StrategyName.FEDADAM:
        inner = GuardedFedAdam(eta=server_lr, beta_1=server_momentum, **common)
    elif chosen is StrategyName.FEDTRIMMEDAVG:
        inner = GuardedFedTrimmedAvg(beta=trim_beta, **common)
    else:
        inner = GuardedFedMedian(**common)
    strategy: Strategy = cast(Strategy, inner)
    if dp:
        strategy = DifferentialPrivacyClientSideFixedClipping(
            strategy,
            noise_multiplier=dp_noise_multiplier,
            clipping_norm=dp_clipping_norm,
            num_sampled_clients=min_participants,
        )
    return strategy, inner


__all__ = [
    "SERVER_LEARNING_RATES",
    "SERVER_OPTIMIZERS",
    "GuardedFedAdam",
    "GuardedFedAvg",
    "GuardedFedAvgM",
    "GuardedFedMedian",
    "GuardedFedProx",
    "GuardedFedTrimmedAvg",
    "ParticipationError",
    "RoundGuard",
    "RunRecorder",
    "StrategyName",
    "build_strategy",
]
