"""Evidence a rollout decides on, per plant, from node events and metrics reports.

Values use the rollout evidence paths of :mod:`policies` (``rollout.predictions``,
``rollout.fallback_rate``, ``rollout.http_p99_ms``, ``rollout.contract_violation_rate``,
``estimated.<metric>`` and ``champion.estimated.<metric>``, ``node.report_age_s``). A node
reports its shadow/canary counters as events of kind ``rollout.<anything>`` whose payload
names ``model_version`` (the version label) and carries ``stats``: ``samples`` (or
``predictions``), ``fallbacks`` (or ``fallback_rate``), ``p99_ms`` and
``contract_violations`` (or ``contract_violation_rate``). Every value is read through the
owning domain's service.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from federation.schemas.metrics_registry import MetricKind
from hub.events import service as events_service
from hub.metrics import service as metrics_service
from policies import Evidence

#: Node events that mean the node refused or withdrew the new version itself.
REFUSAL_KINDS = frozenset({"rollout.rolled_back", "rollout.failed", "rollout.load_failed"})


@dataclass(frozen=True)
class PlantEvidence:
    """What is known about one plant of a rollout right now."""

    evidence: Evidence
    refusal: str | None = None
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def predictions(self) -> int:
        """Predictions the new version made at the plant (shadow or canary)."""
        value = self.evidence.values.get("rollout.predictions")
        return int(value) if isinstance(value, int | float) else 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value else None


def _rate(stats: dict[str, Any], rate_key: str, count_key: str, samples: float | None) -> Any:
    rate = _number(stats.get(rate_key))
    if rate is not None:
        return rate
    count = _number(stats.get(count_key))
    if count is not None and samples:
        return count / samples
    return None


def gather(
    *,
    session: Session,
    plant_id: str,
    model: str,
    version_label: str,
    champion_label: str | None,
    since: dt.datetime,
    now: dt.datetime,
) -> PlantEvidence:
    """Collect the rollout evidence of one plant.

    Parameters
    ----------
    session
        Any session (reads only).
    plant_id, model, version_label
        Whom and what the evidence is about.
    champion_label
        The version being replaced (for relative criteria), if any.
    since
        Events before this (the plant's start in the rollout) are not about this rollout.
    now
        The engine's clock.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    refusal = None
    events = events_service.recent_events(
        session=session, plant_id=plant_id, kind_prefix="", limit=200
    )
    last_seen = max((e.received_at for e in events), default=None)
    for event in events:
        payload = event.payload or {}
        if not event.kind.startswith("rollout.") or event.received_at < since:
            continue
        if str(payload.get("model_version")) != version_label:
            continue
        if payload.get("model", payload.get("baseline", model)) not in (model, None):
            continue
        if event.kind in REFUSAL_KINDS and refusal is None:
            refusal = f"node reported {event.kind}: {payload.get('reason') or 'no reason given'}"
        stats = payload.get("stats") or {}
        if "rollout.predictions" in values:
            continue
        samples = _number(stats.get("samples", stats.get("predictions")))
        if samples is None:
            continue
        values["rollout.predictions"] = int(samples)
        fallback = _rate(stats, "fallback_rate", "fallbacks", samples)
        if fallback is not None:
            values["rollout.fallback_rate"] = fallback
        violations = _rate(stats, "contract_violation_rate", "contract_violations", samples)
        if violations is not None:
            values["rollout.contract_violation_rate"] = violations
        if (p99 := _number(stats.get("p99_ms"))) is not None:
            values["rollout.http_p99_ms"] = p99
        sources["rollout"] = f"plant event {event.kind} {event.id}"
    for label, prefix in ((version_label, ""), (champion_label, "champion.")):
        if label is None:
            continue
        estimated = metrics_service.latest_version_values(
            session=session,
            plant_id=plant_id,
            model_name=model,
            model_version=label,
            kind=MetricKind.ESTIMATED,
        )
        for metric, (value, _end) in estimated.items():
            values[f"{prefix}estimated.{metric}"] = value
    if "rollout.http_p99_ms" not in values:
        latency = metrics_service.latest_version_values(
            session=session,
            plant_id=plant_id,
            model_name=model,
            model_version=version_label,
            kind=MetricKind.LATENCY,
        )
        if "p99" in latency:
            values["rollout.http_p99_ms"] = latency["p99"][0]
            sources["latency"] = "metrics report latency_ms.p99"
    reported = metrics_service.last_report_at(session=session, plant_id=plant_id)
    seen = max([t for t in (last_seen, reported, since) if t is not None])
    values["node.report_age_s"] = max(0.0, (now - seen).total_seconds())
    return PlantEvidence(
        evidence=Evidence(plant=plant_id, product_line=None, values=values),
        refusal=refusal,
        sources=sources,
    )


def last_seen(*, session: Session, plant_id: str) -> dt.datetime | None:
    """When the plant last reported anything (an event or a metrics report)."""
    events = events_service.recent_events(
        session=session, plant_id=plant_id, kind_prefix="", limit=1
    )
    seen = [
        t
        for t in (
            events[0].received_at if events else None,
            metrics_service.last_report_at(session=session, plant_id=plant_id),
        )
        if t is not None
    ]
    return max(seen) if seen else None
