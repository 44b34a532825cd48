"""The recipe document: how a baseline is built, trained, judged and federated (pydantic, JSON)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policies import Comparator, Evidence, Gate, Verdict, check_gate, upgrade_legacy_gates


class Baseline(StrEnum):
    """The baselines Millwright ships."""

    CMAPSS = "cmapss"
    AI4I = "ai4i"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataContractRef(_Section):
    """Which data contract the training rows must pass."""

    name: str
    version: str


class SplitProtocol(_Section):
    """How rows are divided into train / validation / test."""

    kind: Literal["official_test_set", "stratified_holdout"]
    test_fraction: float | None = None
    validation_fraction: float = 0.0
    stratify_on: str | None = None
    group_by: str | None = None
    seed: int = 0
    description: str = ""


class Hyperparameters(_Section):
    """Optimizer and schedule of centralized training (and the default for local rounds)."""

    epochs: int = Field(gt=0)
    lr: float = Field(gt=0)
    batch_size: int = Field(gt=0)
    weight_decay: float = 0.0
    seed: int = 0
    threads: int = 2
    aux_weight: float = 1.0
    # Centralized training only: the published model is the mean of this many copies of the
    # architecture, each with its own initialization and training seed (seed + i). Federated
    # rounds train and exchange one copy (see ``baselines.models.RulEnsemble``).
    ensemble: int = Field(1, ge=1)
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)


#: A recipe's promotion gates are :class:`policies.Gate` rules on the version's own test-split
#: metrics (``validation.<metric>``), scoped to a plant where the bound is per plant.
PromotionGate = Gate
#: The comparators a gate may use (was a recipe-only enum of ``<=`` and ``>=``).
GateOp = Comparator


class Int8Tolerance(_Section):
    """How much worse than FP32 an INT8 model may be on the same test windows."""

    metric: str
    max_degradation: float
    calibration_samples: int = 300


class FederationKnobs(_Section):
    """Defaults for federated fine-tuning campaigns (the campaign may override them)."""

    strategy: Literal["fedavg", "fedprox", "fedtrimmedavg", "fedmedian", "fedavgm", "fedadam"] = (
        "fedprox"
    )
    proximal_mu: float = 0.01
    # Server optimizer of fedavgm (step, momentum) and fedadam (eta, beta_1); ignored otherwise.
    # None takes the strategy's default step (federation.strategies.SERVER_LEARNING_RATES).
    server_learning_rate: float | None = Field(None, gt=0)
    server_momentum: float = Field(0.9, ge=0, lt=1)
    rounds: int = 5
    local_epochs: int = 1
    min_clients: int = 2
    fraction_train: float = 1.0


class PrivacyKnobs(_Section):
    """Differential privacy defaults; secure aggregation is refused (see the validator)."""

    differential_privacy: bool = False
    clipping_norm: float | None = None
    noise_multiplier: float | None = None
    secure_aggregation: bool = False

    @field_validator("secure_aggregation")
    @classmethod
    def _no_secure_aggregation(cls, value: bool) -> bool:
        # flwr 1.41's SecAgg+ (SecAggPlusWorkflow + secaggplus_mod) runs only with the legacy
        # strategy API, and would hide the per-plant updates that validation must see; the
        # README's privacy paragraph has the details. Refused, never silently ignored.
        if value:
            raise ValueError(
                "secure_aggregation is not supported: flwr 1.41's SecAgg+ needs the legacy "
                "strategy API (LegacyContext), not the Message-API strategies Millwright runs"
            )
        return value


class MonitoringKnobs(_Section):
    """How a plant node monitors models of this recipe (a node's own settings may override).

    Control-chart alerts: raise when the rolling estimate over ``performance_window`` chunks
    is ``performance_k`` reference sigma worse than the reference mean for ``raise_after``
    chunks in a row; clear within ``performance_k_clear`` sigma after ``clear_after``.
    """

    chunk_size: int | None = Field(500, ge=10)
    chunk_period: str | None = None  # pandas offset alias such as "8h"; replaces chunk_size
    reference_rows: int = Field(2000, ge=20)
    performance_k: float = Field(2.0, gt=0)
    performance_k_clear: float = Field(1.0, ge=0)
    performance_window: int = Field(3, ge=1)
    drift_k: float = Field(4.0, gt=0)
    raise_after: int = Field(2, ge=1)
    clear_after: int = Field(2, ge=1)
    min_report_rows: int = Field(100, ge=1)  # anonymization: smaller windows are suppressed
    false_alarm_rate: float = Field(0.002, ge=0, lt=0.5)
    failure_mode_features: list[str] = Field(default_factory=list, max_length=64)


class Recipe(_Section):
    """A versioned, JSON-serializable recipe, stored in the hub registry beside each model."""

    name: str
    version: str
    baseline: Baseline
    task: Literal["rul_regression", "failure_classification"]
    description: str
    data_contract: DataContractRef
    preprocessing: dict[str, Any]
    features: dict[str, Any]
    architecture: dict[str, Any]
    hyperparameters: Hyperparameters
    calibration: dict[str, Any] = Field(default_factory=dict)
    split: SplitProtocol
    metrics: list[str]
    promotion_gates: list[Gate]
    int8_tolerance: Int8Tolerance
    plants: list[str]
    federation: FederationKnobs = FederationKnobs()
    privacy: PrivacyKnobs = PrivacyKnobs()
    monitoring: MonitoringKnobs = MonitoringKnobs()

    @field_validator("promotion_gates", mode="before")
    @classmethod
    def _upgrade_gates(cls, value: Any) -> Any:
        # Recipes stored before policies/ (exports' recipe.json, metadata.json) wrote
        # {metric, op, value, plant}; they load as the same rules.
        return upgrade_legacy_gates(value)

    @field_validator("promotion_gates")
    @classmethod
    def _unique_gate_names(cls, value: list[Gate]) -> list[Gate]:
        names = [g.name for g in value]
        if len(set(names)) != len(names):
            raise ValueError("promotion gate names must be unique")
        return value

    @property
    def recipe_id(self) -> str:
        """``name@version``, the registry key."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (what the hub registry stores)."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """Return canonical JSON (sorted keys, no whitespace variance)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """Return the sha256 of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def for_plant(self, plant: str | None) -> Recipe:
        """Return the recipe as one plant trains with it: overrides applied, then dropped.

        Its JSON is what a model's fingerprint covers, so changing one plant's override does
        not invalidate the other plants' models.
        """
        hp = self.hyperparameters_for(plant).model_copy(update={"overrides": {}})
        return self.model_copy(update={"hyperparameters": hp})

    def training_json(self, plant: str | None) -> str:
        """Return canonical JSON of what trains a plant's baseline (:meth:`for_plant`).

        The federation, privacy and monitoring knobs and the promotion gates are left out:
        they change how a model is later federated, watched or judged, not how its baseline
        is trained, so tuning them must not invalidate trained models or their fingerprints.
        """
        return json.dumps(
            self.for_plant(plant).model_dump(
                mode="json", exclude={"federation", "privacy", "monitoring", "promotion_gates"}
            ),
            sort_keys=True,
            separators=(",", ":"),
        )

    def hyperparameters_for(self, plant: str | None) -> Hyperparameters:
        """Return the hyperparameters with a plant's overrides applied."""
        over = self.hyperparameters.overrides.get(plant or "", {})
        return self.hyperparameters.model_copy(update=over) if over else self.hyperparameters

    def gates_pass(
        self, metrics: Mapping[str, float], plant: str | None = None
    ) -> dict[str, bool]:
        """Evaluate the gates that apply to ``plant`` on test-split ``metrics``, by gate name.

        Each gate is reported under its own name, so two gates on one metric (a fleet bound
        and a plant's) are both kept. Fleet gates apply everywhere, plant-scoped gates only
        to their plant; a missing metric fails.

        Parameters
        ----------
        metrics
            Bare metric names (``"rmse"``) -> value, as the pipeline scores them; they are
            the ``validation.<metric>`` evidence of the gates.
        plant
            The plant the model was trained for.

        Returns
        -------
        dict[str, bool]
            Gate name -> passed, for the gates that apply.
        """
        evidence = Evidence(
            plant=plant, values={f"validation.{k}": float(v) for k, v in metrics.items()}
        )
        out: dict[str, bool] = {}
        for gate in self.promotion_gates:
            result = check_gate(gate, evidence)
            if result.verdict is not Verdict.NOT_APPLICABLE:
                out[gate.name] = result.verdict is Verdict.PASS
        return out
