"""The model inventory: which model runs where, trained when, on what data, validated when.

One row per plant x model with a champion alias, assembled from the registry (alias,
version, lineage), governance (the promotion that admitted the version, the version it
replaced), metrics reports (latest estimated and realized values), node reports (last
seen, ``stale``) and active rollouts, each through its service.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from federation.schemas.governance import LifecycleState, PromotionStatus
from federation.schemas.metrics_registry import MetricKind
from federation.schemas.registry import AliasName
from federation.schemas.rollouts import InventoryRow
from hub.db import utcnow
from hub.governance import service as governance_service
from hub.metrics import service as metrics_service
from hub.registry import service as registry_service
from hub.registry.models import ModelVersion
from hub.rollouts import evidence as evidence_mod
from hub.rollouts import service

#: Longest lineage walked (baseline -> campaign -> personalized is three).
MAX_LINEAGE = 20


def _lineage(session: Session, version: ModelVersion) -> list[str]:
    chain = [version.version]
    parent_id = version.parent_id
    while parent_id is not None and len(chain) < MAX_LINEAGE:
        parent = registry_service.get_version(session=session, version_id=parent_id)
        if parent is None:
            break
        chain.append(parent.version)
        parent_id = parent.parent_id
    return list(reversed(chain))


def _validated(
    session: Session, plant_id: str, version_id: int
) -> tuple[dt.datetime | None, str | None]:
    rows, _ = governance_service.list_promotions(
        session=session,
        plant_id=plant_id,
        status=None,
        version_id=version_id,
        page_size=500,
        page_token=None,
    )
    admitted = [
        r
        for r in rows
        if r.alias == AliasName.CHAMPION.value
        and PromotionStatus(r.status) in (PromotionStatus.APPROVED, PromotionStatus.BREAK_GLASS)
    ]
    if not admitted:
        return None, None
    last = admitted[-1]
    summary = (last.decision or {}).get("summary")
    if summary is None:
        summary = "break-glass" if last.break_glass else (last.reason or "approved")
    return last.decided_at or last.created_at, str(summary)


def inventory(
    *,
    session: Session,
    plant_id: str | None,
    model: str | None,
    stale_after_s: float,
    now: dt.datetime | None = None,
) -> list[InventoryRow]:
    """Every champion in the fleet (optionally one plant or model), by plant then model.

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
    seen: dict[str, dt.datetime | None] = {}
    out: list[InventoryRow] = []
    for alias in registry_service.list_alias_rows(
        session=session, alias=AliasName.CHAMPION, model_id=model_id, plant_id=plant_id
    ):
        version = alias.version
        name = alias.model.name
        if alias.plant_id not in seen:
            seen[alias.plant_id] = evidence_mod.last_seen(session=session, plant_id=alias.plant_id)
        last = seen[alias.plant_id]
        states = governance_service.list_lifecycle(session=session, plant_id=alias.plant_id)
        retired = sorted(
            (
                s
                for s in states
                if s.model == name
                and s.state is LifecycleState.RETIRED
                and s.version_id != version.id
            ),
            key=lambda s: s.updated_at,
        )
        previous = None
        if retired:
            prev_row = registry_service.get_version(
                session=session, version_id=retired[-1].version_id
            )
            previous = None if prev_row is None else prev_row.version
        parent = None
        if version.parent_id is not None:
            parent_row = registry_service.get_version(session=session, version_id=version.parent_id)
            parent = None if parent_row is None else parent_row.version
        validated_at, validation = _validated(session, alias.plant_id, version.id)
        values = {
            kind: metrics_service.latest_version_values(
                session=session,
                plant_id=alias.plant_id,
                model_name=name,
                model_version=version.version,
                kind=kind,
            )
            for kind in (MetricKind.ESTIMATED, MetricKind.REALIZED)
        }
        active = service.active_stage(session=session, model=name, plant_id=alias.plant_id)
        out.append(
            InventoryRow(
                plant_id=alias.plant_id,
                model=name,
                version_id=version.id,
                version=version.version,
                serving_since=alias.updated_at,
                previous_version=previous,
                trained_at=version.created_at,
                training_data_fingerprint=version.training_data_fingerprint,
                parent_version=parent,
                lineage=_lineage(session, version),
                recipe_id=version.recipe_id,
                last_validated_at=validated_at,
                last_validation=validation,
                estimated={m: v for m, (v, _) in values[MetricKind.ESTIMATED].items()},
                realized={m: v for m, (v, _) in values[MetricKind.REALIZED].items()},
                last_report_at=last,
                stale=last is None or (now - last).total_seconds() > stale_after_s,
                rollout_id=None if active is None else active[0],
                rollout_stage=None if active is None else active[1],
            )
        )
    return out
