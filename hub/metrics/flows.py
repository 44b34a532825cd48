"""Fleet history for dashboards and benchmarks: plants, models and a year of hourly reports.

:func:`seed_history` enrolls plants, registers models, recipes (with gates), versions and
champions through the registry and recipe services, then writes hourly metrics reports
through :func:`.service.ingest_reports`, the same function the batch route calls, so every
report is validated, de-duplicated and rolled up as a plant's would be. It is deterministic:
the same arguments write the same report ids, and re-running it only finds duplicates.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from federation.schemas.metrics_report import (
    AlertCounts,
    ChunkSummary,
    DriftScores,
    FeatureDrift,
    ImpactCounts,
    ImpactMethod,
    IntegrityCounts,
    LatencyPercentiles,
    MetricsReport,
    MetricValue,
    report_id,
)
from federation.schemas.recipes import RecipeCreate
from federation.schemas.registry import (
    AliasName,
    BaselineModelCreate,
    HardwareProfile,
    PlantCreate,
    VersionCreate,
)
from hub.metrics import service
from hub.recipes import service as recipe_service
from hub.registry import service as registry_service
from policies import Gate
from policies.legacy import upgrade_legacy_gate


@dataclass(frozen=True)
class FleetModel:
    """A model of the synthetic fleet: its metric, gate, and how its error behaves."""

    name: str
    dataset: str
    metric: str
    op: str
    gate: float
    typical: float
    method: ImpactMethod


FLEET_MODELS = (
    FleetModel("turbofan-rul", "cmapss", "rmse", "<=", 20.0, 15.0, ImpactMethod.RUL_THRESHOLD),
    FleetModel("ai4i-failure", "ai4i", "f1", ">=", 0.70, 0.82, ImpactMethod.ALARM_OUTCOME),
    FleetModel("bearing-rul", "cmapss", "rmse", "<=", 25.0, 18.0, ImpactMethod.RUL_THRESHOLD),
    FleetModel("press-anomaly", "ai4i", "f1", ">=", 0.65, 0.78, ImpactMethod.ALARM_OUTCOME),
)
REGIONS = ("north", "south", "east", "west", "central")
MIN_ROWS = 50
MIN_UNITS = 10


def _plant_id(i: int) -> str:
    return f"plant-{i:02d}"


def setup_fleet(
    *, session: Session, plants: int, models: int, actor: str = "seed-history"
) -> list[str]:
    """Enroll plants and register models, gated recipes, versions 1.0 / 2.0 and champions.

    Idempotent: existing plants and models are kept. Returns the plant ids.
    """
    ids = [_plant_id(i) for i in range(1, plants + 1)]
    for i, pid in enumerate(ids, start=1):
        if registry_service.get_plant(session=session, plant_id=pid) is None:
            region = REGIONS[i % len(REGIONS)]
            registry_service.create_plant(
                session=session,
                plant_in=PlantCreate(
                    id=pid,
                    name=f"Plant {i:02d} {region.title()}",
                    site=f"{region} region",
                    lines=[f"line-{region}"],
                    hardware_profile=HardwareProfile(cpu="Atom x6425E", cores=4, memory_gb=8),
                ),
                actor=actor,
            )
    for m in FLEET_MODELS[:models]:
        if registry_service.get_model(session=session, name=m.name) is not None:
            continue
        registry_service.create_model(
            session=session,
            model_in=BaselineModelCreate(name=m.name, task=m.metric, dataset=m.dataset),
            actor=actor,
        )
        recipe = recipe_service.create_recipe(
            session=session,
            recipe_in=RecipeCreate(
                name=f"{m.name}-recipe",
                metrics=[m.metric],
                gates=[
                    Gate.model_validate(
                        upgrade_legacy_gate({"metric": m.metric, "op": m.op, "threshold": m.gate})
                    )
                ],
            ),
            actor=actor,
        )
        recipe = recipe_service.publish_recipe(session=session, recipe_id=recipe.id)
        base = registry_service.create_version(
            session=session,
            version_in=VersionCreate(
                model=m.name,
                version="1.0",
                recipe_id=recipe.id,
                metrics={m.metric: m.typical},
                tags={"stage": "baseline"},
            ),
            actor=actor,
        )
        fed = registry_service.create_version(
            session=session,
            version_in=VersionCreate(
                model=m.name,
                version="2.0",
                recipe_id=recipe.id,
                parent_id=base.id,
                metrics={m.metric: m.typical * (0.95 if m.op == "<=" else 1.03)},
                tags={"stage": "federated"},
            ),
            actor=actor,
        )
        for pid in ids:
            # Synthetic history, not a promotion: the alias change is audited and flagged.
            registry_service.point_alias(
                session=session,
                plant_id=pid,
                model=m.name,
                alias=AliasName.CHAMPION,
                version_id=fed.id,
                actor=actor,
                flags=("seed_history",),
            )
        session.commit()
    return ids


def hourly_report(
    *,
    plant_index: int,
    plant_id: str,
    model: FleetModel,
    hour: int,
    start: dt.datetime,
    switch_hour: int,
    rng: random.Random,
    labelled: bool = True,
) -> MetricsReport:
    """One synthetic hourly report: a seasonal metric that degrades at some plants."""
    w0 = start + dt.timedelta(hours=hour)
    w1 = w0 + dt.timedelta(hours=1)
    version = "1.0" if hour < switch_hour else "2.0"
    degrading = plant_index % 7 == 3 and hour > switch_hour
    drift = 0.05 + (0.3 * (hour - switch_hour) / max(switch_hour, 1) if degrading else 0.0)
    season = 0.04 * math.sin(2 * math.pi * hour / (24 * 7))
    spread = 1 + 0.02 * (plant_index % 5) + season + (drift if degrading else 0.0)
    value = model.typical * (spread if model.op == "<=" else 2 - spread)
    estimated = round(value * (1 + rng.gauss(0, 0.02)), 4)
    realized = round(value * (1 + rng.gauss(0, 0.04)), 4) if labelled else None
    units = MIN_UNITS + rng.randrange(20)
    caught = rng.randrange(3)
    missed = 1 if rng.random() < (0.25 if degrading else 0.05) else 0
    false_alarms = rng.randrange(2)
    raised = 1 if degrading and rng.random() < 0.1 else 0
    return MetricsReport(
        report_id=report_id(
            plant_id=plant_id,
            model_name=model.name,
            model_version=version,
            start=w0,
            end=w1,
            secret=f"seed-history:{plant_id}".encode(),
        ),
        plant_id=plant_id,
        model_name=model.name,
        model_version=version,
        window_start=w0,
        window_end=w1,
        n_rows=360,
        min_rows_policy=MIN_ROWS,
        chunks=[
            ChunkSummary(
                chunk=0,
                start=w0,
                end=w1,
                n_rows=360,
                metrics=[
                    MetricValue(
                        metric=model.metric,
                        estimated=estimated,
                        lower=round(estimated * 0.9, 4),
                        upper=round(estimated * 1.1, 4),
                        realized=realized,
                        n_labels=40 if labelled else 0,
                    )
                ],
            )
        ],
        drift=[
            FeatureDrift(
                feature="s2",
                scores=DriftScores(psi=round(drift, 4)),
                drifted_chunks=1 if drift > 0.2 else 0,
            )
        ],
        integrity=IntegrityCounts(missing_rows=rng.randrange(3)),
        latency_ms=LatencyPercentiles(
            p50=round(2.0 + rng.random(), 3),
            p95=round(4.0 + rng.random(), 3),
            p99=round(6.0 + 2 * rng.random(), 3),
        ),
        alerts=AlertCounts(raised=raised, open=1 if degrading and drift > 0.2 else 0),
        impact=ImpactCounts(
            method=model.method,
            units=units,
            min_units_policy=MIN_UNITS,
            caught=caught,
            missed=missed,
            false_alarms=false_alarms,
            threshold=30.0 if model.method is ImpactMethod.RUL_THRESHOLD else 0.5,
        ),
    )


def seed_history(
    *,
    session_factory: Callable[[], Session],
    plants: int = 50,
    models: int = 4,
    hours: int = 24 * 365,
    end: dt.datetime | None = None,
    batch: int = 1000,
    progress: Callable[[int, int], None] | None = None,
    shard: tuple[int, int] = (0, 1),
) -> int:
    """Write ``plants x models x hours`` hourly reports ending at ``end``; return how many.

    Reports go through :func:`.service.ingest_reports` in batches of ``batch`` (one plant and
    model per batch); the last day's reports carry no realized values yet (labels pending).
    ``shard=(i, n)`` writes only every n-th plant starting at the i-th, so n processes can
    share the work (each enrolls the whole fleet first, which is idempotent).
    """
    # Default: today's midnight (UTC), so re-runs and parallel shards write the same windows.
    end = (end or dt.datetime.now(dt.UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(hours=hours)
    with session_factory() as session:
        ids = setup_fleet(session=session, plants=plants, models=models)
    index, count = shard
    mine = [(i, pid) for i, pid in enumerate(ids, start=1) if (i - 1) % count == index]
    total = len(mine) * models * hours
    done = 0
    for p_index, pid in mine:
        for m_index, model in enumerate(FLEET_MODELS[:models]):
            rng = random.Random(p_index * 100 + m_index)
            switch = hours // 2 + 24 * (p_index % 10)
            for first in range(0, hours, batch):
                reports = [
                    hourly_report(
                        plant_index=p_index,
                        plant_id=pid,
                        model=model,
                        hour=h,
                        start=start,
                        switch_hour=switch,
                        rng=rng,
                        labelled=h < hours - 24,
                    )
                    for h in range(first, min(first + batch, hours))
                ]
                with session_factory() as session:
                    service.ingest_reports(
                        session=session,
                        plant_id=pid,
                        reports=reports,
                        actor="seed-history",
                        max_batch=batch,
                    )
                done += len(reports)
                if progress is not None:
                    progress(done, total)
    return done
