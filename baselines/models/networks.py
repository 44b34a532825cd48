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
        return self.head(z).squeeze(-1) * self.rul_scale


class FailureClassifier(nn.Module):
    """MLP over feature rows; ``forward`` returns the temperature-scaled failure probability."""

    task = "failure_classification"

    def __init__(self, *, n_features: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = n_features
        for c_out in hidden:
            layers += [nn.Linear(c_in, c_out), nn.ReLU(), nn.Dropout(dropout)]
            c_in = c_out
        layers.append(nn.Linear(c_in, 1))
        self.body = nn.Sequential(*layers)
        self.register_buffer(f"{CALIB_PREFIX}temperature", torch.tensor(1.0))
        self.register_buffer(f"{CALIB_PREFIX}threshold", torch.tensor(0.5))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Uncalibrated logits ``(B,)`` (what training optimizes)."""
        return self.body(x).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Calibrated failure probability ``(B,)``."""
        return torch.sigmoid(self.logits(x) / self.calib_temperature)


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
        if len(input_shape) != 1:
            raise ValueError(f"mlp expects (features,) samples, got {input_shape}")
        return FailureClassifier(
            n_features=input_shape[0],
            hidden=list(architecture["hidden"]),
            dropout=float(architecture.get("dropout", 0.0)),
        )
    raise ValueError(f"unknown architecture kind {kind!r}")


__all__ = ["CALIB_PREFIX", "FailureClassifier", "RulRegressor", "build_network"]
