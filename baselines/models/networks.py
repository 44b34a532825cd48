"""Torch networks of the baselines: a 1D-CNN (optionally + GRU) RUL regressor and an MLP classifier.

Every network's ``forward`` returns the final served quantity (RUL in cycles; calibrated failure
probability), so the exported OpenVINO graph needs no post-processing. Buffers whose names start
with ``calib_`` hold calibration (temperature, decision threshold); they are not model weights
and are not exchanged in federated rounds.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

CALIB_PREFIX = "calib_"


class RulRegressor(nn.Module):
    """1D-CNN over ``(batch, window, features)`` windows, with an optional GRU on top.

    Parameters
    ----------
    n_features, window
        Input shape of one sample.
    conv_channels, kernel_size
        Convolution stack (same padding, ReLU).
    gru_hidden
        Hidden size of a GRU over the convolved sequence; 0 flattens the sequence instead.
    head_hidden, dropout
        Fully connected head.
    rul_scale
        The network learns RUL / rul_scale; ``forward`` returns cycles.
    """

    task = "rul_regression"
    rul_scale: torch.Tensor

    def __init__(
        self,
        *,
        n_features: int,
        window: int,
        conv_channels: list[int],
        kernel_size: int,
        gru_hidden: int,
        head_hidden: int,
        dropout: float,
        rul_scale: float,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = n_features
        for c_out in conv_channels:
            layers += [nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2), nn.ReLU()]
            c_in = c_out
        self.conv = nn.Sequential(*layers)
        self.gru = nn.GRU(c_in, gru_hidden, batch_first=True) if gru_hidden else None
        flat = gru_hidden if gru_hidden else c_in * window
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(flat, head_hidden), nn.ReLU(), nn.Linear(head_hidden, 1)
        )
        self.register_buffer("rul_scale", torch.tensor(float(rul_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows ``(B, W, F)`` to RUL in cycles ``(B,)``."""
        z = self.conv(x.transpose(1, 2))  # (B, C, W)
        if self.gru is not None:
            _, h = self.gru(z.transpose(1, 2))
            z = h[-1]
        else:
            z = z.flatten(1)
        out: torch.Tensor = self.head(z).squeeze(-1) * self.rul_scale
        return out


class RulEnsemble(nn.Module):
    """The mean of independently initialized and trained RUL networks, as one module.

    Centralized training only (``Hyperparameters.ensemble``): averaging cuts the seed-to-seed
    variance of the small-data subsets, and one module exports as one OpenVINO graph.
    Federation trains and exchanges a single network, never an ensemble.
    """

    task = "rul_regression"

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.ensemble = nn.ModuleList(members)

    @property
    def rul_scale(self) -> torch.Tensor:
        """The members' output scale (they share the recipe's RUL cap)."""
        scale = self.ensemble[0].rul_scale
        assert isinstance(scale, torch.Tensor)
        return scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of the members' RUL in cycles ``(B,)``."""
        return torch.stack([member(x) for member in self.ensemble]).mean(dim=0)


class SensorWiseCnn(nn.Module):
    """Deep CNN after Li, Ding and Sun (2018): convolutions along time, one sensor at a time.

    The input ``(batch, window, features)`` is treated as a one-channel image; every kernel is
    ``(kernel_size, 1)``, so sensors are mixed only by the fully connected head. Few weights,
    strong inductive bias: each filter learns a temporal pattern shared by all sensors.
    """

    task = "rul_regression"
    rul_scale: torch.Tensor

    def __init__(
        self,
        *,
        n_features: int,
        window: int,
        filters: int,
        n_layers: int,
        kernel_size: int,
        head_hidden: int,
        dropout: float,
        rul_scale: float,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for _ in range(n_layers):
            layers += [nn.Conv2d(c_in, filters, (kernel_size, 1), padding="same"), nn.Tanh()]
            c_in = filters
        layers += [nn.Conv2d(c_in, 1, (3, 1), padding="same"), nn.Tanh()]
        self.conv = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(window * n_features, head_hidden),
            nn.Tanh(),
            nn.Linear(head_hidden, 1),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.xavier_normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        self.register_buffer("rul_scale", torch.tensor(float(rul_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows ``(B, W, F)`` to RUL in cycles ``(B,)``."""
        out: torch.Tensor = self.head(self.conv(x.unsqueeze(1))).squeeze(-1) * self.rul_scale
        return out


class FailureClassifier(nn.Module):
    """MLP over feature rows; ``forward`` returns the temperature-scaled failure probability.

    Besides the machine-failure logit the network has ``n_aux`` auxiliary logits, trained on the
    failure-mode labels when they are given (multi-task learning: the modes are clean, physically
    distinct targets that shape the shared layers). They are labels only, never inputs, and the
    served output is the machine-failure probability alone.
    """

    task = "failure_classification"
    calib_temperature: torch.Tensor
    calib_threshold: torch.Tensor

    def __init__(
        self,
        *,
        n_features: int,
        hidden: list[int],
        dropout: float,
        n_aux: int = 0,
        score_heads: list[int] | None = None,
        members: int = 1,
    ) -> None:
        super().__init__()

        def mlp() -> nn.Sequential:
            layers: list[nn.Module] = []
            c_in = n_features
            for c_out in hidden:
                layers += [nn.Linear(c_in, c_out), nn.ReLU(), nn.Dropout(dropout)]
                c_in = c_out
            layers.append(nn.Linear(c_in, 1 + n_aux))
            return nn.Sequential(*layers)

        # An ensemble of independently initialized MLPs, averaged in logit space: the failure
        # boundaries are sharp and the positives few, so single networks vary from seed to seed.
        self.members = nn.ModuleList([mlp() for _ in range(members)])
        self.n_aux = n_aux
        self.score_heads = list(score_heads or [])
        if any(not 1 <= h <= n_aux for h in self.score_heads):
            raise ValueError(
                f"score heads {self.score_heads} must index auxiliary outputs 1..{n_aux}"
            )
        self.register_buffer(f"{CALIB_PREFIX}temperature", torch.tensor(1.0))
        self.register_buffer(f"{CALIB_PREFIX}threshold", torch.tensor(0.5))

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's logits ``(M, B, 1 + n_aux)`` (what training optimizes)."""
        return torch.stack([member(x) for member in self.members])

    def all_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Ensemble logits ``(B, 1 + n_aux)``: machine failure first, then the modes."""
        return self.member_logits(x).mean(dim=0)

    def probability(self, x: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
        """Failure probability ``(B,)`` at a given temperature.

        Without score heads: ``sigmoid(z_failure / T)``. With score heads (the failure modes that
        the process readings determine) it is their noisy-OR with temperature-scaled heads,
        ``1 - prod_k sigmoid(-z_k / T)``: only sigmoid, product and subtraction, which OpenVINO
        and NNCF handle exactly.
        """
        z = self.all_logits(x) / temperature
        if not self.score_heads:
            return torch.sigmoid(z[:, 0])
        return 1.0 - torch.sigmoid(-z[:, self.score_heads]).prod(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Calibrated failure probability ``(B,)``."""
        return self.probability(x, self.calib_temperature)


def build_network(
    architecture: dict[str, Any], input_shape: tuple[int, ...], *, rul_scale: float = 125.0
) -> nn.Module:
    """Instantiate the network a recipe's ``architecture`` section describes.

    Raises
    ------
    ValueError
        If the architecture kind is unknown or the input shape does not fit it.
    """
    kind = architecture.get("kind")
    if kind == "dcnn":
        if len(input_shape) != 2:
            raise ValueError(f"{kind} expects (window, features) samples, got {input_shape}")
        window, n_features = input_shape
        return SensorWiseCnn(
            n_features=n_features,
            window=window,
            filters=int(architecture["filters"]),
            n_layers=int(architecture["n_layers"]),
            kernel_size=int(architecture["kernel_size"]),
            head_hidden=int(architecture["head_hidden"]),
            dropout=float(architecture.get("dropout", 0.0)),
            rul_scale=rul_scale,
        )
    if kind in ("cnn", "cnn_gru"):
        if len(input_shape) != 2:
            raise ValueError(f"{kind} expects (window, features) samples, got {input_shape}")
        window, n_features = input_shape
        return RulRegressor(
            n_features=n_features,
            window=window,
            conv_channels=list(architecture["conv_channels"]),
            kernel_size=int(architecture["kernel_size"]),
            gru_hidden=int(architecture.get("gru_hidden", 0)) if kind == "cnn_gru" else 0,
            head_hidden=int(architecture["head_hidden"]),
            dropout=float(architecture.get("dropout", 0.0)),
            rul_scale=rul_scale,
        )
    if kind == "mlp":
        aux = list(architecture.get("auxiliary_targets", []))
        if len(input_shape) != 1:
            raise ValueError(f"mlp expects (features,) samples, got {input_shape}")
        return FailureClassifier(
            n_features=input_shape[0],
            hidden=list(architecture["hidden"]),
            dropout=float(architecture.get("dropout", 0.0)),
            n_aux=len(aux),
            score_heads=[1 + aux.index(h) for h in architecture.get("score_heads", [])],
            members=int(architecture.get("members", 1)),
        )
    raise ValueError(f"unknown architecture kind {kind!r}")


__all__ = [
    "CALIB_PREFIX",
    "FailureClassifier",
    "RulEnsemble",
    "RulRegressor",
    "SensorWiseCnn",
    "build_network",
]
