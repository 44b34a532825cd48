"""Evidence: the dotted facts a policy is evaluated on, and the vocabulary of their names."""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

EvidenceValue = float | int | bool | str | None

#: Model-quality metrics an evidence path may name, with whether lower values are better.
KNOWN_METRICS: dict[str, bool] = {
    "rmse": True,
    "rmse_uncapped": True,
    "mae": True,
    "mse": True,
    "mape": True,
    "phm08_score": True,
    "phm08_score_uncapped": True,
    "ece": True,
    "brier": True,
    "f1": False,
    "precision": False,
    "recall": False,
    "pr_auc": False,
    "roc_auc": False,
    "accuracy": False,
}

#: Metrics that are sums over the evaluated samples (PHM08's score), not means: comparable
#: between two evaluations only when both name the same sample count.
EXTENSIVE_METRICS: frozenset[str] = frozenset({"phm08_score", "phm08_score_uncapped"})
#: Keys a metrics document may carry its sample count under.
SAMPLE_COUNT_KEYS: tuple[str, ...] = ("n", "num_examples", "samples", "n_samples")

#: The evidence vocabulary: dotted paths (``<metric>`` stands for any of ``KNOWN_METRICS``).
KNOWN_EVIDENCE: dict[str, str] = {
    "validation.<metric>": "the version's own metric on its recipe's test split",
    "holdout.<metric>": "the version's metric on the target plant's holdout",
    "campaign.<metric>": "the target plant's metric in the campaign's last round",
    "estimated.<metric>": "latest estimated (label-free) metric at the plant",
    "realized.<metric>": "latest realized metric at the plant (labels arrived)",
    "reference.<metric>": "the champion's reference metric at the plant (monitoring baseline)",
    "champion.estimated.<metric>": "latest estimated metric of the plant's current champion",
    "champion.realized.<metric>": "latest realized metric of the plant's current champion",
    "shadow.agreement": "share of shadow predictions agreeing with the champion (0..1)",
    "shadow.error_delta": "shadow error minus champion error on the same requests",
    "shadow.latency_delta_ms": "shadow p99 latency minus champion p99 latency (ms)",
    "shadow.predictions": "predictions the shadow comparison covers",
    "int8.parity_ok": "the INT8 IR stays within the recipe's tolerance of FP32 (bool)",
    "int8.degradation": "INT8 metric minus FP32 metric, in the metric's worse direction",
    "contract.compatible": "the version's data contract is compatible with the plant's (bool)",
    "lineage.complete": "the version's lineage names its recipe, data and parent (bool)",
    "artifact.verified": "the artifact exists and its sha256 matches the version (bool)",
    "rollout.predictions": "predictions the new version served during the current stage",
    "rollout.fallback_rate": "share of requests the new version answered by fallback (0..1)",
    "rollout.http_p99_ms": "HTTP p99 latency at the plant during the current stage (ms)",
    "rollout.contract_violation_rate": "share of requests refused by the data contract (0..1)",
    "node.report_age_s": "seconds since the plant node last reported",
    "drift.sustained_chunks": "consecutive chunks with a drift alert",
    "outcomes.new_failure_types": "failure types in outcomes the model was not trained on",
    "operator.flagged_errors": "operator-flagged prediction errors in the trigger's window",
    "line.product_mix_changed": "the line signalled a recipe / product-mix change (bool)",
    "schedule.due": "the trigger's cron schedule is due (bool)",
    "labels.new": "labelled rows since the model was last trained",
}

_METRIC_SLOT = "<metric>"
_PATH = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")


def is_known_metric(path: str) -> bool:
    """Tell whether ``path`` is in the evidence vocabulary (:data:`KNOWN_EVIDENCE`).

    Parameters
    ----------
    path
        A dotted evidence path such as ``"holdout.rmse"``.

    Returns
    -------
    bool
        ``True`` for ``"holdout.rmse"`` or ``"int8.parity_ok"``, ``False`` for
        ``"holdout.rmsee"`` or ``"rmse.fd001"``.
    """
    if not isinstance(path, str) or not _PATH.match(path):
        return False
    if path in KNOWN_EVIDENCE:
        return True
    for pattern in KNOWN_EVIDENCE:
        if pattern.endswith("." + _METRIC_SLOT):
            head = pattern[: -len(_METRIC_SLOT)]
            if path.startswith(head) and path[len(head) :] in KNOWN_METRICS:
                return True
    return False


def metric_of(path: str) -> str | None:
    """Return the quality metric a path measures (``"estimated.rmse"`` -> ``"rmse"``), if any.

    Parameters
    ----------
    path
        A dotted evidence path.

    Returns
    -------
    str | None
        The last segment when it is one of :data:`KNOWN_METRICS`, else ``None``.
    """
    last = path.rsplit(".", 1)[-1]
    return last if last in KNOWN_METRICS else None


def lower_is_better(path: str) -> bool:
    """Tell whether smaller values of the path's metric are better (``True`` for rmse).

    Parameters
    ----------
    path
        A dotted evidence path whose last segment is a known metric.

    Returns
    -------
    bool
        The metric's direction; paths without a quality metric count as lower-is-better
        (latencies, rates, counts).
    """
    metric = metric_of(path)
    return True if metric is None else KNOWN_METRICS[metric]


class Evidence(BaseModel):
    """What a decision is made on: one plant's (or the fleet's) facts by evidence path.

    A non-finite number (NaN, infinity) is no evidence and is kept as ``None`` (missing), so a
    gate that needs it fails closed.

    Parameters
    ----------
    plant
        The plant the evidence is about (``None`` for fleet-wide evidence).
    product_line
        The plant's product line, if it has one.
    values
        Evidence path -> observed value.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    plant: str | None = Field(None, max_length=100)
    product_line: str | None = Field(None, max_length=100)
    values: dict[str, EvidenceValue] = Field(default_factory=dict)

    @field_validator("values", mode="before")
    @classmethod
    def _finite_or_missing(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in value.items()
            }
        return value

    @field_validator("values")
    @classmethod
    def _bounded(cls, value: dict[str, EvidenceValue]) -> dict[str, EvidenceValue]:
        if len(value) > 1000:
            raise ValueError("at most 1000 evidence values")
        for key, v in value.items():
            if len(key) > 200 or (isinstance(v, str) and len(v) > 1000):
                raise ValueError(f"evidence {key[:50]!r}: path <= 200, text <= 1000 characters")
        return value
