"""Typed view of a federated run's run config (the ``[tool.flwr.app.config]`` keys).

Defaults live in ``federation/apps/pyproject.toml``; the runner overrides them per run.
Keys are kebab-case, as Flower's run config is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAULT_MODES = ("", "nan", "scale100", "stall")


def _opt_path(value: Any) -> Path | None:
    return Path(str(value)) if value not in (None, "") else None


def parse_node_plants(value: str) -> dict[int, str]:
    """Parse ``"<node-id>=<plant>,..."`` (the runner's map from SuperNode registration)."""
    out: dict[int, str] = {}
    for item in filter(None, (p.strip() for p in value.split(","))):
        node, _, plant = item.partition("=")
        out[int(node)] = plant
    return out


def parse_plants(value: str) -> list[str]:
    """Parse the ``plants`` key (``"FD001,FD002"``) into a list of plant ids."""
    return [p.strip() for p in value.split(",") if p.strip()]


@dataclass(frozen=True)
class RunSettings:
    """Everything a run can be told through run config."""

    baseline: str = "toy-linear"
    strategy: str = "fedavg"
    num_server_rounds: int = 2
    local_epochs: int = 1
    learning_rate: float = 0.1
    batch_size: int = 32
    proximal_mu: float = 0.01
    trim_beta: float = 0.2
    # Server optimizer of fedavgm (SGD + momentum) and fedadam (eta, beta_1); a learning
    # rate of 0 takes the strategy's default (federation.strategies.SERVER_LEARNING_RATES).
    server_learning_rate: float = 0.0
    server_momentum: float = 0.9
    min_participants: int = 2
    round_timeout: float = 120.0
    node_wait_timeout: float = 60.0
    max_update_norm: float = 0.0
    max_samples_per_plant: int = 0
    max_units_per_plant: int = 0
    personalize_epochs: int = 0
    personalize_learning_rate: float = 0.0
    # Personalization fine-tunes every weight by default: on C-MAPSS it beat head-only tuning
    # on every plant (benchmarks/results/federation.json); true tunes only the prediction head.
    personalize_head_only: bool = False
    dp_noise_multiplier: float = 0.0
    dp_clipping_norm: float = 0.0
    seed: int = 0
    results_path: Path | None = None
    model_path: Path | None = None
    initial_weights_path: Path | None = None
    campaign_id: str = ""
    parent_version: str = ""
    node_plants: str = ""
    # Comma-separated plant ids the campaign is for (empty: every connected SuperNode).
    plants: str = ""
    # Fault injection for tests and benchmarks: what ``fault-plant`` does to its update.
    fault_plant: str = ""
    fault_mode: str = ""
    fault_stall_seconds: float = 0.0

    @classmethod
    def from_run_config(cls, run_config: dict[str, Any]) -> RunSettings:
        """Build from Flower's ``context.run_config``; unknown keys are ignored.

        Raises
        ------
        ValueError
            If a value has the wrong type or ``fault-mode`` is unknown.
        """
        values: dict[str, Any] = {}
        for name, field in cls.__dataclass_fields__.items():
            key = name.replace("_", "-")
            if key not in run_config:
                continue
            raw = run_config[key]
            if name in ("results_path", "model_path", "initial_weights_path"):
                values[name] = _opt_path(raw)
            elif field.type in ("int",):
                values[name] = int(raw)
            elif field.type in ("float",):
                values[name] = float(raw)
            elif field.type in ("bool",):
                values[name] = raw if isinstance(raw, bool) else str(raw).lower() == "true"
            else:
                values[name] = str(raw)
        settings = cls(**values)
        if settings.fault_mode not in FAULT_MODES:
            raise ValueError(f"unknown fault-mode {settings.fault_mode!r}")
        return settings
