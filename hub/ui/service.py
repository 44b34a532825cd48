"""Page queries of the dashboards: each reads through the other domains' services.

Nothing here touches a table: the numbers come from the metrics service's aggregate reads
(the daily rollup and the latest values), the registry, recipe, campaign and event
services. Every function takes the plants the caller may see (``None``: all), so a page
never shows what the API would refuse.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy.orm import Session

from federation.errors import Forbidden, InvalidInput, NotFound
from federation.schemas.audit import AuditEntryRead
from federation.schemas.metrics_registry import MetricKind
from federation.schemas.registry import AliasName, VersionRead
from federation.schemas.rollouts import InventoryRow, InventoryStatus
from hub.audit import service as audit_service
from hub.campaigns import service as campaigns_service
from hub.events import service as events_service
from hub.metrics import service as metrics_service
from hub.recipes import service as recipe_service
from hub.registry import service as registry_service
from hub.rollouts import inventory as inventory_service
from hub.ui.costs import CostPolicies
from hub.ui.schemas import (
    ComparePage,
    FleetRow,
    Gate,
    ImpactRow,
    LineageNode,
    ModelPage,
    PlantPage,
    RankRow,
    RoundRow,
)

#: Days a comparison period (current vs previous, in the ranking) spans.
PERIOD_DAYS = 7
#: Days the plant page charts by default.
PLANT_DAYS = 30
#: Reports whose chunks the plant page lists.
RECENT_REPORTS = 24


def _gate(gates: list[dict[str, Any]]) -> Gate | None:
    for g in gates:
        try:
            # Recipe gates are policies.Gate rules on an evidence path ("validation.rmse");
            # the reports' metric is the part after the evidence family ("rmse").
            metric = str(g["metric"]).split(".", 1)[-1]
            return Gate(metric=metric, op=str(g["op"]), threshold=float(g["threshold"]))
        except (KeyError, TypeError, ValueError):
            continue
    return None


def _gates_of(session: Session, recipe_ids: set[int]) -> dict[int, Gate | None]:
    out: dict[int, Gate | None] = {}
    for rid in recipe_ids:
        recipe = recipe_service.get_recipe(session=session, recipe_id=rid)
        out[rid] = _gate(list(recipe.gates)) if recipe is not None else None
    return out


def fleet_rows(
    *, session: Session, plant_ids: list[str] | None, now: dt.datetime
) -> list[FleetRow]:
    """Plants x models with their champion, latest estimate/realized vs gate and health.

    A plant without any model yet has one row with an empty ``model``.

    Sorted worst first: a breached gate, then drift, open alerts, integrity, then the
    smallest margin to the gate.
    """
    plants = {p.id: p for p in registry_service.plants_by_ids(session=session, plant_ids=plant_ids)}
    champions = registry_service.list_aliases_of(
        session=session, plant_ids=plant_ids, alias=AliasName.CHAMPION
    )
    gates = _gates_of(session, {a.version.recipe_id for a in champions if a.version.recipe_id})
    latest = metrics_service.latest_values(
        session=session,
        plant_ids=plant_ids,
        kinds=(MetricKind.ESTIMATED, MetricKind.REALIZED, MetricKind.ALERTS, MetricKind.INTEGRITY),
    )
    values: dict[tuple[str, str], dict[tuple[str, str], float]] = defaultdict(dict)
    newest: dict[tuple[str, str], dt.datetime] = {}
    for v in latest:
        key = (v.plant_id, v.model_name)
        values[key][(v.kind, v.metric)] = v.value
        if key not in newest or v.window_end > newest[key]:
            newest[key] = v.window_end
    drift = metrics_service.max_drift_scores(session=session, plant_ids=plant_ids)
    keys = {(a.plant_id, a.model.name) for a in champions} | set(values)
    champion_of = {(a.plant_id, a.model.name): a for a in champions}
    rows = []
    for plant_id, model in keys:
        if plant_id not in plants:
            continue
        alias = champion_of.get((plant_id, model))
        gate = gates.get(alias.version.recipe_id) if alias and alias.version.recipe_id else None
        vals = values.get((plant_id, model), {})
        metric = (
            gate.metric
            if gate
            else next((m for k, m in vals if k == MetricKind.ESTIMATED.value), None)
        )
        est = vals.get((MetricKind.ESTIMATED.value, metric)) if metric else None
        real = vals.get((MetricKind.REALIZED.value, metric)) if metric else None
        drifted, psi = drift.get((plant_id, model), (0.0, 0.0))
        integrity = sum(
            vals.get((MetricKind.INTEGRITY.value, m), 0.0)
            for m in ("missing_rows", "late_rows", "stuck_units")
        )
        end = newest.get((plant_id, model))
        rows.append(
            FleetRow(
                plant_id=plant_id,
                plant_name=plants[plant_id].name,
                model=model,
                version=alias.version.version if alias else None,
                metric=metric,
                estimated=est,
                realized=real,
                gate=gate,
                drifted_chunks=int(drifted),
                psi=psi,
                integrity_issues=int(integrity),
                open_alerts=int(vals.get((MetricKind.ALERTS.value, "open"), 0.0)),
                last_report_end=end,
                last_report_age_h=(now - end).total_seconds() / 3600 if end else None,
            )
        )
    # An enrolled plant with no champion and no report yet still has its row: the overview
    # shows every plant the viewer may see, not only those that already report.
    listed = {r.plant_id for r in rows}
    for plant_id, plant in plants.items():
        if plant_id not in listed:
            rows.append(
                FleetRow(
                    plant_id=plant_id,
                    plant_name=plant.name,
                    model="",
                    version=None,
                    metric=None,
                    estimated=None,
                    realized=None,
                    gate=None,
                    drifted_chunks=0,
                    psi=0.0,
                    integrity_issues=0,
                    open_alerts=0,
                    last_report_end=None,
                    last_report_age_h=None,
                )
            )
    rows.sort(key=lambda r: r.severity_key())
    return rows


def _period_mean(
    points: list[tuple[dt.date, float, int]], start: dt.date, end: dt.date
) -> float | None:
    total = count = 0.0
    for day, mean, n in points:
        if start <= day <= end:
            total += mean * n
            count += n
    return total / count if count else None


def compare(
    *,
    session: Session,
    plant_ids: list[str],
    model: str,
    metric: str,
    start: dt.date,
    end: dt.date,
    normalize: bool,
) -> ComparePage:
    """One metric over time for 2-10 plants, estimated and realized, with a ranking table.

    ``normalize`` divides each plant's values by its own baseline (the mean estimate of the
    first :data:`PERIOD_DAYS` days of the range) so plants with different units compare.

    Raises
    ------
    InvalidInput
        When fewer than 2 or more than 10 plants are asked for, or the range is bad.
    """
    if not 2 <= len(plant_ids) <= 10:
        raise InvalidInput(f"Pick 2 to 10 plants to compare ({len(plant_ids)} picked).")
    registry_service.get_model_or_raise(session=session, name=model)
    found = {p.id for p in registry_service.plants_by_ids(session=session, plant_ids=plant_ids)}
    missing = [p for p in plant_ids if p not in found]
    if missing:
        raise NotFound(f"plant '{missing[0]}' is not enrolled.")
    points = metrics_service.daily_means(
        session=session,
        plant_ids=plant_ids,
        model_name=model,
        metric=metric,
        kinds=(MetricKind.ESTIMATED, MetricKind.REALIZED),
        start=start,
        end=end,
    )
    series: dict[tuple[str, str], list[tuple[dt.date, float, int]]] = defaultdict(list)
    for p in points:
        series[(p.plant_id, p.kind)].append((p.day, p.mean, p.n))
    base_end = start + dt.timedelta(days=PERIOD_DAYS - 1)
    baselines = {
        pid: _period_mean(series[(pid, MetricKind.ESTIMATED.value)], start, base_end)
        for pid in plant_ids
    }
    scale = {pid: (100.0 / b if normalize and b else 1.0) for pid, b in baselines.items()}
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    chart: dict[str, list[float | None]] = {}
    for pid in plant_ids:
        for kind in (MetricKind.ESTIMATED.value, MetricKind.REALIZED.value):
            by_day = {d: m for d, m, _ in series[(pid, kind)]}
            chart[f"{pid}|{kind}"] = [by_day[d] * scale[pid] if d in by_day else None for d in days]
    cur_start = end - dt.timedelta(days=PERIOD_DAYS - 1)
    prev_end = cur_start - dt.timedelta(days=1)
    prev_start = prev_end - dt.timedelta(days=PERIOD_DAYS - 1)
    lower_better = _lower_is_better(session, plant_ids, model, metric)
    ranking = []
    for pid in plant_ids:
        est = series[(pid, MetricKind.ESTIMATED.value)]
        current = _period_mean(est, cur_start, end)
        previous = _period_mean(est, prev_start, prev_end)
        realized = _period_mean(series[(pid, MetricKind.REALIZED.value)], cur_start, end)
        s = scale[pid]
        ranking.append(
            RankRow(
                plant_id=pid,
                current=current * s if current is not None else None,
                previous=previous * s if previous is not None else None,
                realized=realized * s if realized is not None else None,
                baseline=baselines[pid],
            )
        )
    ranking.sort(
        key=lambda r: (r.current is None, (r.current or 0.0) * (1 if lower_better else -1))
    )
    return ComparePage(
        model=model,
        metric=metric,
        plants=plant_ids,
        start=start,
        end=end,
        normalize=normalize,
        days=days,
        chart=chart,
        ranking=ranking,
        period_days=PERIOD_DAYS,
        lower_is_better=lower_better,
    )


def _lower_is_better(session: Session, plant_ids: list[str], model: str, metric: str) -> bool:
    # the compared plants' champions carry the gate (not every champion of the fleet)
    for alias in registry_service.list_aliases_of(
        session=session, plant_ids=plant_ids, alias=AliasName.CHAMPION
    ):
        if alias.model.name == model and alias.version.recipe_id:
            gate = _gates_of(session, {alias.version.recipe_id}).get(alias.version.recipe_id)
            if gate is not None and gate.metric == metric:
                return gate.op.startswith("<")
    return metric not in ("f1", "accuracy", "precision", "recall", "auc", "r2")


def plant_page(
    *, session: Session, plant_id: str, model: str | None, start: dt.date, end: dt.date
) -> PlantPage:
    """Return a plant's models, versions served, alerts, recent chunks, latency and fallbacks.

    Raises
    ------
    NotFound
        When the plant (or the model asked for) does not exist.
    """
    plant = registry_service.get_plant_or_raise(session=session, plant_id=plant_id)
    metrics_service.check_range(start, end)
    champions = registry_service.list_aliases_of(
        session=session, plant_ids=[plant_id], alias=AliasName.CHAMPION
    )
    served = metrics_service.versions_served(session=session, plant_id=plant_id)
    models = sorted({a.model.name for a in champions} | {s.model_name for s in served})
    if model is not None and model not in models:
        registry_service.get_model_or_raise(session=session, name=model)
        raise NotFound(f"plant '{plant_id}' serves no model '{model}'.")
    chosen = model or (models[0] if models else None)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    latency: dict[str, list[float | None]] = {}
    alerts_raised: list[float | None] = []
    fallback_rate: list[float | None] = []
    chunks: list[dict[str, Any]] = []
    alert_details: list[dict[str, Any]] = []
    if chosen is not None:
        for name in ("p50", "p95", "p99"):
            by_day = {
                p.day: p.mean
                for p in metrics_service.daily_means(
                    session=session,
                    plant_ids=[plant_id],
                    model_name=chosen,
                    metric=name,
                    kinds=(MetricKind.LATENCY,),
                    start=start,
                    end=end,
                )
            }
            latency[name] = [by_day.get(d) for d in days]
        raised = {
            p.day: p.mean * p.n
            for p in metrics_service.daily_means(
                session=session,
                plant_ids=[plant_id],
                model_name=chosen,
                metric="raised",
                kinds=(MetricKind.ALERTS,),
                start=start,
                end=end,
            )
        }
        alerts_raised = [raised.get(d) for d in days]
        rows = {
            p.day: p.mean * p.n
            for p in metrics_service.daily_means(
                session=session,
                plant_ids=[plant_id],
                model_name=chosen,
                metric="n_rows",
                kinds=(MetricKind.INTEGRITY,),
                start=start,
                end=end,
            )
        }
        fallbacks = events_service.count_by_day(
            session=session, plant_id=plant_id, kind_prefix="alert.fallback", start=start, end=end
        )
        fallback_rate = [
            (1000.0 * fallbacks.get(d, 0) / rows[d]) if rows.get(d) else None for d in days
        ]
        for doc in metrics_service.recent_reports(
            session=session, plant_id=plant_id, model_name=chosen, limit=RECENT_REPORTS
        ):
            for c in doc.get("chunks", []):
                for m in c.get("metrics", []):
                    chunks.append(
                        {
                            "version": doc.get("model_version"),
                            "start": c.get("start"),
                            "n_rows": c.get("n_rows"),
                            "metric": m.get("metric"),
                            "estimated": m.get("estimated"),
                            "lower": m.get("lower"),
                            "upper": m.get("upper"),
                            "realized": m.get("realized"),
                            "unreliable": list(m.get("unreliable") or []),
                        }
                    )
            for a in doc.get("alert_details", []):
                alert_details.append({**a, "window_start": doc.get("window_start")})
    events = events_service.recent_events(
        session=session, plant_id=plant_id, kind_prefix="", limit=50
    )
    return PlantPage(
        plant_id=plant.id,
        plant_name=plant.name,
        site=plant.site,
        lines=list(plant.lines),
        models=models,
        model=chosen,
        champions={a.model.name: a.version.version for a in champions},
        served=served,
        start=start,
        end=end,
        days=days,
        latency=latency,
        alerts_raised=alerts_raised,
        fallback_per_1000=fallback_rate,
        chunks=chunks,
        alert_details=alert_details,
        rollouts=[e for e in events if e.kind.startswith("rollout.")],
        alert_events=[e for e in events if e.kind.startswith("alert.")],
    )


def model_page(
    *, session: Session, model: str, version: str, plant_ids: list[str] | None
) -> ModelPage:
    """Return a version's lineage (baseline -> campaign -> per-plant), campaign rounds and diff.

    Raises
    ------
    NotFound
        When the model or version does not exist.
    Forbidden
        When the version was fine-tuned for a plant the caller may not see.
    """
    row = registry_service.get_version_by_label_or_raise(
        session=session, model=model, version=version
    )
    this = row.to_read()
    if plant_ids is not None and this.plant_id is not None and this.plant_id not in plant_ids:
        raise Forbidden(f"Version {model} {version} belongs to another plant.")
    ancestors: list[VersionRead] = []
    parent_id = this.parent_id
    while parent_id is not None and len(ancestors) < 20:
        parent = registry_service.get_version_read_or_raise(session=session, version_id=parent_id)
        ancestors.append(parent)
        parent_id = parent.parent_id
    root = ancestors[-1] if ancestors else this
    tree: list[LineageNode] = []

    def walk(version_id: int, depth: int) -> None:
        children, _ = registry_service.list_versions(
            session=session,
            filters=registry_service.VersionFilters(parent_id=version_id),
            page_size=200,
            page_token=None,
        )
        for child in sorted(children, key=lambda v: v.id):
            if plant_ids is not None and child.plant_id not in (None, *plant_ids):
                continue
            tree.append(LineageNode(version=child, depth=depth, current=child.id == this.id))
            if depth < 6:
                walk(child.id, depth + 1)

    tree.append(LineageNode(version=root, depth=0, current=root.id == this.id))
    walk(root.id, 1)
    rounds: list[RoundRow] = []
    campaign_id = None
    campaigns, _ = campaigns_service.list_campaigns(
        session=session, status=None, page_size=500, page_token=None
    )
    for c in campaigns:
        personalized = {int(v) for v in dict(c.personalized_version_ids).values()}
        if c.version_id == this.id or this.id in personalized:
            campaign_id = c.id
            for r in campaigns_service.round_records(session=session, campaign_id=c.id):
                for pid in sorted(set(r.participants) | set(r.evaluate.per_plant)):
                    if plant_ids is not None and pid not in plant_ids:
                        continue
                    ev = r.evaluate.per_plant.get(pid)
                    rounds.append(
                        RoundRow(
                            round=r.round,
                            plant_id=pid,
                            metrics=dict(ev.metrics) if ev else {},
                            bytes=r.bytes_up_per_plant.get(pid, 0)
                            + r.bytes_down_per_plant.get(pid, 0),
                            seconds=r.seconds,
                        )
                    )
            break
    previous = ancestors[0] if ancestors else None
    diff = (
        registry_service.diff_versions(session=session, a_id=previous.id, b_id=this.id).changes
        if previous is not None
        else []
    )
    return ModelPage(
        version=this,
        ancestors=ancestors,
        tree=tree,
        campaign_id=campaign_id,
        rounds=rounds,
        previous=previous,
        diff=diff,
    )


METHOD = (
    "Counts come from each plant's own outcomes, computed on the plant node and sent as "
    "counts only (windows with fewer labelled units than the policy minimum are not sent). "
    "C-MAPSS models: a failure is caught when the predicted RUL crossed the maintenance "
    "threshold before the unit failed, missed when it failed unwarned, and a warning with "
    "no failure within the threshold is a false alarm. AI4I models: an alarm confirmed by a "
    "QA failure is caught, a refuted alarm is false, a failure without an alarm is missed. "
    "Downtime avoided = caught x the policy's hours per failure. Cost avoided = caught x "
    "(hours per failure x cost per unplanned failure hour - cost of the planned "
    "intervention). Cost "
    "of false alarms = false alarms x cost per false alarm. Net = avoided - false alarms."
)


def impact(
    *,
    session: Session,
    plant_ids: list[str] | None,
    costs: CostPolicies,
    start: dt.date,
    end: dt.date,
) -> list[ImpactRow]:
    """Return business outcomes per plant and month, priced with each plant's cost policy."""
    totals = metrics_service.monthly_totals(
        session=session,
        plant_ids=plant_ids,
        kind=MetricKind.IMPACT,
        metrics=("caught", "missed", "false_alarms"),
        start=start,
        end=end,
    )
    grouped: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for t in totals:
        grouped[(t.plant_id, t.month)][t.metric] += t.total
    names = {
        p.id: p.name for p in registry_service.plants_by_ids(session=session, plant_ids=plant_ids)
    }
    rows = []
    for (pid, month), counts in sorted(grouped.items()):
        policy = costs.for_plant(pid)
        caught, missed, false = (int(counts[k]) for k in ("caught", "missed", "false_alarms"))
        row = ImpactRow(
            plant_id=pid,
            plant_name=names.get(pid, pid),
            month=month,
            caught=caught,
            missed=missed,
            false_alarms=false,
        )
        if policy is not None:
            hours = caught * policy.hours_per_failure
            row = row.model_copy(
                update={
                    "downtime_hours_avoided": hours,
                    "cost_avoided": hours * policy.cost_per_unplanned_failure_hour
                    - caught * policy.cost_per_planned_intervention,
                    "false_alarm_cost": false * policy.cost_per_false_alarm,
                    "currency": policy.currency,
                    "policy_ref": policy.ref,
                }
            )
        rows.append(row)
    return rows


def product_lines(*, session: Session, plant_ids: list[str] | None) -> dict[str, list[str]]:
    """Each visible plant's product lines (to compare one line across plants)."""
    return {
        p.id: list(p.lines)
        for p in registry_service.plants_by_ids(session=session, plant_ids=plant_ids)
    }


def compare_choices(
    *, session: Session, plant_ids: list[str] | None
) -> tuple[list[tuple[str, str]], dict[str, str | None], dict[str, list[str]]]:
    """Return what the comparison form offers: plants, models with their gated metric, lines."""
    plants = registry_service.plants_by_ids(session=session, plant_ids=plant_ids)
    champions = registry_service.list_aliases_of(
        session=session, plant_ids=plant_ids, alias=AliasName.CHAMPION
    )
    recipes: dict[str, int | None] = {}
    for a in champions:
        recipes.setdefault(a.model.name, a.version.recipe_id)
    gates = _gates_of(session, {r for r in recipes.values() if r})
    metrics = {}
    for model, rid in sorted(recipes.items()):
        gate = gates.get(rid) if rid else None
        metrics[model] = gate.metric if gate else None
    return [(p.id, p.name) for p in plants], metrics, {p.id: list(p.lines) for p in plants}


def inventory(
    *,
    session: Session,
    plant_id: str | None,
    model: str | None,
    status: InventoryStatus | None,
    stale_after_s: float,
) -> list[InventoryRow]:
    """Return the inventory's rows, filtered as ``GET /api/v1/inventory`` filters them.

    Raises
    ------
    NotFound
        When the plant or model filter names nothing.
    """
    return inventory_service.inventory(
        session=session, plant_id=plant_id, model=model, status=status, stale_after_s=stale_after_s
    )


def inventory_choices(*, session: Session) -> tuple[list[tuple[str, str]], list[str]]:
    """Return the plants (id, name) and model names the inventory filters offer."""
    plants = registry_service.plants_by_ids(session=session, plant_ids=None)
    champions = registry_service.list_aliases_of(
        session=session, plant_ids=None, alias=AliasName.CHAMPION
    )
    return [(p.id, p.name) for p in plants], sorted({a.model.name for a in champions})


#: Audit entries one page of the audit view shows.
AUDIT_PAGE = 100


def audit(
    *,
    session: Session,
    action: str | None,
    subject: str | None,
    actor: str | None,
    since: str | None,
    until: str | None,
    page_token: str | None,
    page_size: int = AUDIT_PAGE,
) -> tuple[list[AuditEntryRead], str | None]:
    """Return one page of the audit trail in chain order, filtered as ``GET /api/v1/audit``.

    Raises
    ------
    InvalidInput
        When a time bound is not ISO 8601 or the page token does not fit the filters.
    """
    filters = audit_service.AuditFilters(action, subject, actor, since, until)
    return audit_service.list_entries(
        session=session, filters=filters, page_size=page_size, page_token=page_token
    )
