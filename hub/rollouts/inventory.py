"""The model inventory: which model runs where, trained when, on what data, validated when.

One row per plant x model with a champion alias, assembled from the registry (alias,
version, lineage), governance (the promotion that admitted the version, the version it
replaced), metrics reports (latest estimated and realized values), node reports (last
seen, ``stale``) and active rollouts, each through its service.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from federation.schemas.governance import LifecycleState
from federation.schemas.metrics_registry import MetricKind
from federation.schemas.registry import AliasName
from federation.schemas.rollouts import InventoryRow, InventoryStatus
from hub.db import utcnow
from hub.events import service as events_service
from hub.governance import service as governance_service
from hub.metrics import service as metrics_service
from hub.registry import service as registry_service
from hub.registry.models import ModelVersion
from hub.rollouts import service

#: Longest lineage walked (baseline -> campaign -> personalized is three).
MAX_LINEAGE = 20


def _load_ancestors(
    session: Session, versions: dict[int, ModelVersion], start: Sequence[Any]
) -> None:
    """Load every ancestor of ``start`` into ``versions``, one query per generation."""
    frontier = {v.parent_id for v in start if v.parent_id is not None} - set(versions)
    for _ in range(MAX_LINEAGE):
        if not frontier:
            return
        found = registry_service.versions_by_ids(session=session, version_ids=frontier)
        versions.update(found)
        frontier = {v.parent_id for v in found.values() if v.parent_id is not None} - set(versions)


def _lineage(versions: dict[int, ModelVersion], version: Any) -> list[str]:
    chain = [version.version]
    parent_id = version.parent_id
    while parent_id is not None and len(chain) < MAX_LINEAGE:
        parent = versions.get(parent_id)
        if parent is None:
            break
        chain.append(parent.version)
        parent_id = parent.parent_id
    return list(reversed(chain))


def inventory(
    *,
    session: Session,
    plant_id: str | None,
    model: str | None,
    stale_after_s: float,
    status: InventoryStatus | None = None,
    now: dt.datetime | None = None,
) -> list[InventoryRow]:
    """Every champion in the fleet (optionally one plant, model or status), by plant then model.

    Each source is read once for every row (a query per source, not per row), so the
    answer stays fast at fleet size.

    Raises
    ------
    NotFound
        When the plant or model filter names nothing.
    """
    now = now or utcnow()
    model_id = None
    if model is not None:
        model_id = registry_service.get_model_or_raise(session=session, name=model).id
    if plant_id is not None:
        registry_service.get_plant_or_raise(session=session, plant_id=plant_id)
    aliases = registry_service.alias_heads(
        session=session, alias=AliasName.CHAMPION, model_id=model_id, plant_id=plant_id
    )
    plants = None if plant_id is None else [plant_id]
    seen_events = events_service.last_received_by_plant(session=session, plant_ids=plants)
    seen_reports = metrics_service.last_report_by_plant(session=session, plant_ids=plants)
    # The version each champion replaced: the newest retired one at that plant.
    champions = {(a.plant_id, a.model_id): a.id for a in aliases}
    replaced: dict[tuple[str, int], tuple[dt.datetime, int]] = {}
    for plant, version_id, model_key, state, updated in governance_service.lifecycle_rows(
        session=session, plant_ids=plants
    ):
        pair = (plant, model_key)
        if state is not LifecycleState.RETIRED or champions.get(pair) in (None, version_id):
            continue
        if pair not in replaced or replaced[pair] < (updated, version_id):
            replaced[pair] = (updated, version_id)
    wanted_ids = {v for _, v in replaced.values()} | {a.parent_id or 0 for a in aliases}
    versions = registry_service.versions_by_ids(session=session, version_ids=wanted_ids)
    _load_ancestors(session, versions, aliases)
    admitted = governance_service.admitted_champions(session=session, plant_ids=plants)
    values: dict[tuple[str, str, str, str], dict[str, float]] = {}
    for v in metrics_service.latest_values(
        session=session, plant_ids=plants, kinds=(MetricKind.ESTIMATED, MetricKind.REALIZED)
    ):
        key = (v.plant_id, v.model_name, v.model_version, v.kind)
        values.setdefault(key, {})[v.metric] = float(v.value)
    drift = metrics_service.max_drift_scores(session=session, plant_ids=plants)
    stages = service.active_stages(session=session, plant_ids=plants)
    serving: dict[tuple[str, str], dict[str, str | None]] = {}
    for plant, _, _, fields in events_service.newest_fields_of_kind(
        session=session, plant_ids=plants, kind_prefix=service.SERVING_EVENT,
        fields=("model", "model_version", "precision", "node_version"), limit=20_000,
    ):  # fmt: skip
        serving.setdefault((plant, str(fields["model"])), fields)
    alerts: dict[str, tuple[str, dt.datetime]] = {}
    for plant, kind, received_at, _ in events_service.newest_fields_of_kind(
        session=session, plant_ids=plants, kind_prefix="alert.", fields=(), limit=5_000
    ):
        alerts.setdefault(plant, (kind, received_at))
    out: list[InventoryRow] = []
    for version in aliases:
        name = version.model
        pid = version.plant_id
        moments = [t for t in (seen_events.get(pid), seen_reports.get(pid)) if t is not None]
        last = max(moments) if moments else None
        before = replaced.get((pid, version.model_id))
        previous = None if before is None else versions.get(before[1])
        parent = versions.get(version.parent_id) if version.parent_id is not None else None
        promotion = admitted.get((pid, version.id))
        active = stages.get((name, pid))
        report = serving.get((pid, name))
        payload = {} if report is None else report
        reported = None if report is None else str(payload.get("model_version"))
        chunks_psi = drift.get((pid, name))
        alert = alerts.get(pid)
        stale = last is None or (now - last).total_seconds() > stale_after_s
        row_status = (
            InventoryStatus.STALE
            if stale
            else InventoryStatus.DIVERGED
            if reported is not None and reported != version.version
            else InventoryStatus.ROLLOUT
            if active is not None
            else InventoryStatus.OK
        )
        if status is not None and row_status is not status:
            continue
        out.append(
            InventoryRow(
                plant_id=pid,
                model=name,
                version_id=version.id,
                version=version.version,
                serving_since=version.updated_at,
                previous_version=None if previous is None else previous.version,
                trained_at=version.created_at,
                training_data_fingerprint=version.training_data_fingerprint,
                parent_version=None if parent is None else parent.version,
                lineage=_lineage(versions, version),
                recipe_id=version.recipe_id,
                last_validated_at=None if promotion is None else promotion.validated_at,
                last_validation=None if promotion is None else promotion.summary,
                estimated=values.get((pid, name, version.version, MetricKind.ESTIMATED.value), {}),
                realized=values.get((pid, name, version.version, MetricKind.REALIZED.value), {}),
                last_report_at=last,
                stale=stale,
                rollout_id=None if active is None else active[0],
                rollout_stage=None if active is None else active[1],
                reported_version=reported,
                precision=None if payload.get("precision") is None else str(payload["precision"]),
                node_version=None
                if payload.get("node_version") is None
                else str(payload["node_version"]),
                drift={}
                if chunks_psi is None
                else {"drifted_chunks": chunks_psi[0], "psi": chunks_psi[1]},
                last_alert=None if alert is None else alert[0],
                last_alert_at=None if alert is None else alert[1],
                status=row_status,
            )
        )
    return out
