"""Evidence for a promotion, gathered from what the hub and the plant nodes already reported.

Every value is read through the owning domain's service (registry, recipes, campaigns,
events, metrics); nothing here queries another domain's tables. The result is an
:class:`policies.Evidence` plus, per value, where it came from (``sources``), so the frozen
decision record explains itself. Its sha256 (``policies.evidence_sha256``) covers the
values only: a new report with the same numbers does not invalidate a signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from federation.schemas.metrics_registry import MetricKind
from federation.schemas.registry import AliasName
from hub.campaigns import service as campaigns_service
from hub.events import service as events_service
from hub.metrics import service as metrics_service
from hub.recipes import service as recipes_service
from hub.registry import service as registry_service
from hub.registry.artifacts import ArtifactStore
from hub.registry.models import Alias, ModelVersion
from policies import KNOWN_METRICS, Evidence, evidence_sha256

if TYPE_CHECKING:
    from hub.recipes.models import Recipe

#: Version metrics with these prefixes are per-precision copies (``int8.rmse``).
_PRECISIONS = ("int8.", "fp32.")
#: Metrics-report kinds that are evidence (``estimated.rmse``, ``realized.f1``).
_REPORTED = frozenset({MetricKind.ESTIMATED, MetricKind.REALIZED})
#: Rollout events the node sends; the newest for the version carries its comparison.
_ROLLOUT_PREFIX = "rollout."


@dataclass(frozen=True)
class GatheredEvidence:
    """The evidence of one promotion and the source of each value."""

    evidence: Evidence
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """sha256 of the evidence (plant, product line and values)."""
        return evidence_sha256(self.evidence)

    def frozen(self) -> dict[str, Any]:
        """Return the JSON stored in the decision record."""
        return {
            "plant": self.evidence.plant,
            "product_line": self.evidence.product_line,
            "values": dict(self.evidence.values),
            "sources": dict(self.sources),
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value else None


def _validation(version: ModelVersion, plant_id: str, out: dict[str, Any]) -> None:
    suffix = f".{plant_id.lower()}"
    metrics = version.metrics or {}
    for key, raw in sorted(metrics.items()):
        value = _number(raw)
        if value is None or key.startswith(_PRECISIONS):
            continue
        if key.endswith(suffix):  # plant folded into the name (``rmse.fd001``): a plant scope
            out[f"validation.{key[: -len(suffix)]}"] = value
        elif "." not in key:
            out.setdefault(f"validation.{key}", value)


def _int8(
    recipe: Recipe | None, version: ModelVersion, values: dict[str, Any], sources: dict[str, str]
) -> None:
    metrics = version.metrics or {}
    tolerance: dict[str, Any] = {}
    if recipe is not None:
        tolerance = dict((recipe.preprocessing or {}).get("int8_tolerance") or {})
    metric = str(tolerance.get("metric") or "")
    pairs = [
        (key[len("int8.") :], _number(metrics[key]), _number(metrics.get(key[len("int8.") :])))
        for key in sorted(metrics)
        if key.startswith("int8.")
    ]
    pairs = [(m, q, f) for m, q, f in pairs if q is not None and f is not None]
    if metric:
        pairs = [p for p in pairs if p[0] == metric] or pairs
    if not pairs:
        return
    name, quantized, reference = pairs[0]
    assert quantized is not None and reference is not None
    # In the metric's worse direction: positive when INT8 is worse than FP32.
    lower_better = KNOWN_METRICS.get(name, True)
    degradation = quantized - reference if lower_better else reference - quantized
    values["int8.degradation"] = degradation
    bound = _number(tolerance.get("max_degradation"))
    if bound is not None:
        values["int8.parity_ok"] = degradation <= bound
    sources["int8"] = f"version metrics int8.{name} vs {name} (max_degradation {bound})"


def _campaign(
    session: Session,
    version: ModelVersion,
    plant_id: str,
    values: dict[str, Any],
    sources: dict[str, str],
) -> None:
    tag = (version.tags or {}).get("campaign")
    if not tag or not str(tag).isdigit():
        return
    campaign = campaigns_service.get_campaign(session=session, campaign_id=int(tag))
    if campaign is None:
        return
    rounds = campaigns_service.round_records(session=session, campaign_id=campaign.id)
    for record in reversed(rounds):
        plant = record.evaluate.per_plant.get(plant_id)
        if plant is None:
            continue
        for key, raw in sorted(plant.metrics.items()):
            if (value := _number(raw)) is not None:
                values[f"campaign.{key}"] = value
        sources["campaign"] = f"campaign {campaign.id} round {record.round} evaluate at {plant_id}"
        break
    if version.plant_id == plant_id:  # personalized: its metrics are this plant's holdout
        for key, raw in sorted((version.metrics or {}).items()):
            if (value := _number(raw)) is not None and "." not in key:
                values[f"holdout.{key}"] = value
        sources["holdout"] = f"personalized version {version.id} evaluated on {plant_id} holdout"
    else:
        for key in [k for k in values if k.startswith("campaign.")]:
            values[f"holdout.{key[len('campaign.') :]}"] = values[key]
        if "campaign" in sources:
            sources["holdout"] = sources["campaign"]


def _rollout(
    session: Session,
    version: ModelVersion,
    plant_id: str,
    values: dict[str, Any],
    sources: dict[str, str],
) -> None:
    for event in events_service.recent_events(
        session=session, plant_id=plant_id, kind_prefix=_ROLLOUT_PREFIX, limit=50
    ):
        payload = event.payload or {}
        if str(payload.get("model_version")) != version.version:
            continue
        stats = payload.get("stats") or {}
        disagreement = _number(stats.get("disagreement"))
        if disagreement is not None:
            values["shadow.agreement"] = 1.0 - disagreement
        if (error_rate := _number(stats.get("error_rate"))) is not None:
            values["shadow.error_delta"] = error_rate
        if (p99 := _number(stats.get("p99_ms"))) is not None:
            values["shadow.latency_delta_ms"] = p99
        for key in ("agreement", "error_delta", "latency_delta_ms"):
            if (value := _number(stats.get(key))) is not None:
                values[f"shadow.{key}"] = value
        sources["shadow"] = f"plant event {event.kind} {event.id} ({payload.get('mode')})"
        return


def _reports(
    session: Session,
    version: ModelVersion,
    plant_id: str,
    values: dict[str, Any],
    sources: dict[str, str],
) -> None:
    summary = metrics_service.summarize(
        session=session, filters={"plant_id": plant_id, "model_version": version.version}
    )
    reports: dict[str, set[str]] = {}
    for obs in summary.items:
        kind = MetricKind(obs.kind)
        if kind in _REPORTED and obs.subject is None and obs.chunk is None:
            values[f"{kind.value}.{obs.metric}"] = obs.value
            reports.setdefault(kind.value, set()).add(str(obs.report_id))
    for kind_name, ids in reports.items():
        sources[kind_name] = "metrics reports " + ", ".join(sorted(ids))


def _contract(
    session: Session,
    mine: str | None,
    version: ModelVersion,
    plant_id: str,
    values: dict[str, Any],
    sources: dict[str, str],
    champion: Alias | None | _Unknown,
) -> None:
    alias = (
        registry_service.find_alias(
            session=session, plant_id=plant_id, model_id=version.model_id, alias=AliasName.CHAMPION
        )
        if isinstance(champion, _Unknown)
        else champion
    )
    if alias is None:  # the plant runs nothing of this model yet
        values["contract.compatible"] = mine is not None
        sources["contract"] = f"{mine or 'no contract'}; plant runs no champion of this model"
        return
    running = _contract_of(_recipe(session, alias.version))
    values["contract.compatible"] = mine is not None and mine == running
    sources["contract"] = f"{mine or 'no contract'} vs running {running or 'no contract'}"


def _recipe(session: Session, version: ModelVersion) -> Recipe | None:
    if version.recipe_id is None:
        return None
    return recipes_service.get_recipe(session=session, recipe_id=version.recipe_id)


def _contract_of(recipe: Recipe | None) -> str | None:
    return None if recipe is None else recipe.data_contract_version or None


class _Unknown:
    """Marks an argument the caller did not look up (so :func:`gather` does)."""


_UNKNOWN = _Unknown()


def gather(
    *,
    session: Session,
    store: ArtifactStore,
    version: ModelVersion,
    plant_id: str,
    champion: Alias | None | _Unknown = _UNKNOWN,
) -> GatheredEvidence:
    """Collect the evidence for promoting ``version`` at ``plant_id``.

    Parameters
    ----------
    session
        Session of the promotion use case (only reads).
    store
        The artifact store, to re-hash the version's artifact.
    version
        The version to promote.
    plant_id
        The target plant.
    champion
        The plant's champion alias of the version's model (None: it runs none), when the
        caller already read it (:func:`hub.registry.service.promotion_target_or_raise`).

    Returns
    -------
    GatheredEvidence
        Values under the documented evidence paths, and where each came from.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {"validation": f"version {version.id} metrics"}
    recipe = _recipe(session, version)
    _validation(version, plant_id, values)
    _int8(recipe, version, values, sources)
    _campaign(session, version, plant_id, values, sources)
    _rollout(session, version, plant_id, values, sources)
    _reports(session, version, plant_id, values, sources)
    _contract(session, _contract_of(recipe), version, plant_id, values, sources, champion)
    values["lineage.complete"] = bool(
        version.training_data_fingerprint
        and version.recipe_id is not None
        and version.artifact_digest is not None
    )
    values["artifact.verified"] = registry_service.blob_matches_digest(
        session=session, store=store, digest=version.artifact_digest
    )
    sources["artifact"] = f"sha256:{version.artifact_digest} re-hashed from the artifact store"
    product_line = (version.tags or {}).get("product_line")
    return GatheredEvidence(
        evidence=Evidence(plant=plant_id, product_line=product_line, values=values),
        sources=sources,
    )
