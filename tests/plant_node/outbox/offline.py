"""A plant node offline for days, on a generated clock: its outbox fills at the real cadence.

Shared by ``tests/plant_node/outbox/test_offline.py`` (two days, scaled down) and the
``offline_7d`` figures of ``benchmarks/bench_reliability_chaos.py`` (seven days at 20
readings/s per line). Nothing waits: every record gets a generated timestamp, the sender
tries a dead hub once per simulated hour (so each stream's head collects attempts), and the
budget job runs every simulated hour, as the scheduler would.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from federation.schemas.metrics_report import MetricsReport, report_id
from plant_node.db import managed_session
from plant_node.outbox import service as outbox_service
from plant_node.outbox.jobs import BUDGET_ALERT_KIND, BudgetReport, enforce_budget
from plant_node.outbox.sender import OutboxSender
from plant_node.outbox.types import Deliverer, OutboxMessage, RetryPolicy

FEATURES = ("air_temp", "process_temp", "rpm", "torque", "tool_wear", "s11", "s12", "s15")
METRICS = ("roc_auc", "f1", "precision")
SECRET = b"plant-held-secret-offline-0123"


@dataclass(frozen=True)
class Cadence:
    """What one plant writes to its outbox, per line.

    Attributes
    ----------
    lines
        Production lines (one served model each).
    readings_per_s
        Predictions per second per line; with ``chunk_rows`` it sets the chunks per report.
    chunk_rows
        Rows per monitoring chunk (``MILLWRIGHT_NODE_MONITOR_CHUNK_SIZE``).
    report_every_h
        Monitoring interval: one metrics report per line per interval.
    revise_after_h
        Labels arrive this late: the window is re-sent as revision 1 (realized metrics).
    feedback_per_h
        Operator verdicts per line per hour (``feedback`` stream).
    alert_every_h
        One drift alert per line every this many hours (``alerts`` stream).
    rollout_every_h
        One rollout event per line every this many hours (``rollout`` stream).
    """

    lines: int = 2
    readings_per_s: float = 20.0
    chunk_rows: int = 500
    report_every_h: int = 1
    revise_after_h: int = 24
    feedback_per_h: int = 12
    alert_every_h: int = 6
    rollout_every_h: int = 24

    @property
    def chunks_per_report(self) -> int:
        """Chunks in one report window."""
        rows = self.readings_per_s * 3600 * self.report_every_h
        return max(1, int(rows // self.chunk_rows))


@dataclass
class OfflineRun:
    """What the node made while offline, and how big its outbox got."""

    reports: dict[str, int] = field(default_factory=dict)  # report id -> newest revision made
    kept: dict[str, int] = field(default_factory=dict)  # what the outbox still holds to send
    events: list[str] = field(default_factory=list)  # event ids (alerts, feedback, rollout)
    messages: int = 0
    peak_accounted_bytes: int = 0
    peak_file_bytes: int = 0
    budget_reports: list[BudgetReport] = field(default_factory=list)
    hours: int = 0


def make_report(
    plant: str, line: int, start: dt.datetime, cadence: Cadence, rng: random.Random, revision: int
) -> MetricsReport:
    end = start + dt.timedelta(hours=cadence.report_every_h)
    n = cadence.chunks_per_report
    step = (end - start) / n
    chunks = [
        {
            "chunk": i,
            "start": (start + i * step).isoformat(),
            "end": (start + (i + 1) * step).isoformat(),
            "n_rows": cadence.chunk_rows,
            "metrics": [
                {
                    "metric": m,
                    "estimated": round(rng.uniform(0.6, 0.95), 4),
                    "lower": round(rng.uniform(0.5, 0.6), 4),
                    "upper": round(rng.uniform(0.95, 1.0), 4),
                    "realized": round(rng.uniform(0.6, 0.95), 4) if revision else None,
                    "n_labels": cadence.chunk_rows if revision else 0,
                }
                for m in METRICS
            ],
            "multivariate_drift": round(rng.uniform(0, 1), 4),
            "drifted_features": sorted(rng.sample(FEATURES, rng.randint(0, 2))),
        }
        for i in range(n)
    ]
    model = f"ai4i-line{line}"
    return MetricsReport.model_validate(
        {
            "report_id": str(
                report_id(
                    plant_id=plant,
                    model_name=model,
                    model_version="3",
                    start=start,
                    end=end,
                    secret=SECRET,
                )
            ),
            "plant_id": plant,
            "model_name": model,
            "model_version": "3",
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "n_rows": n * cadence.chunk_rows,
            "min_rows_policy": 100,
            "revision": revision,
            "chunks": chunks,
            "drift": [
                {
                    "feature": f,
                    "scores": {
                        k: round(rng.uniform(0, 0.3), 4) for k in ("js", "ks", "wasserstein", "psi")
                    },
                }
                for f in FEATURES
            ],
            "integrity": {"null_values": {"torque": rng.randint(0, 5)}, "late_rows": 3},
            "latency_ms": {"p50": 2.1, "p95": 6.3, "p99": 11.8},
            "alerts": {"raised": 1, "true_alarms": 0, "by_kind": {"drift": 1}},
        }
    )


def _enqueue(
    session: Session,
    *,
    stream: str,
    kind: str,
    key: str | None,
    payload: dict[str, Any],
    at: dt.datetime,
) -> OutboxMessage:
    message = outbox_service.enqueue(
        session=session, stream=stream, kind=kind, key=key, payload=payload
    )
    item = outbox_service.get_item(session=session, idempotency_key=message.idempotency_key)
    assert item is not None
    item.created_at = item.next_attempt_at = at  # the generated clock, not the wall clock
    return message


def _file_bytes(db_file: Path) -> int:
    return sum(p.stat().st_size for p in (db_file, Path(f"{db_file}-wal")) if p.exists())


def fill_offline(
    factory: sessionmaker[Session],
    db_file: Path,
    *,
    plant: str,
    days: float,
    cadence: Cadence,
    dead_hub: Deliverer,
    budget_bytes: int,
    start: dt.datetime,
    seed: int = 7,
) -> OfflineRun:
    """Write ``days`` of the cadence into the outbox while every delivery fails.

    Parameters
    ----------
    factory
        Sessions of the node's migrated database.
    db_file
        Its SQLite file (the disk figure is the file plus its WAL).
    plant
        The plant id of the reports.
    days
        Simulated days offline.
    cadence
        What each line writes.
    dead_hub
        A deliverer that fails (the link is down); tried once per simulated hour.
    budget_bytes
        The outbox budget the hourly budget job enforces.
    start
        Generated time of the first hour.
    seed
        Seed of the generated values.

    Returns
    -------
    OfflineRun
        Ids made, peak sizes, and every budget pass.
    """
    rng = random.Random(seed)
    run = OfflineRun()
    now = start
    sender = OutboxSender(
        factory,
        dead_hub,
        policy=RetryPolicy(max_delay_s=3600),
        rng=random.Random(seed),
        clock=lambda: now,
    )
    pending_revisions: list[tuple[dt.datetime, int, dt.datetime]] = []
    for hour in range(int(days * 24)):
        now = start + dt.timedelta(hours=hour + 1)
        with managed_session(factory) as session:
            for line in range(cadence.lines):
                for i in range(cadence.feedback_per_h):
                    at = now - dt.timedelta(
                        minutes=60 * (cadence.feedback_per_h - i) / cadence.feedback_per_h
                    )
                    msg = _enqueue(
                        session,
                        stream="feedback",
                        kind="feedback.verdict",
                        key=f"feedback-l{line}-h{hour}-{i}",
                        at=at,
                        payload={
                            "prediction_id": f"p{line}-{hour}-{i}",
                            "baseline": "ai4i",
                            "model_name": f"ai4i-line{line}",
                            "model_version": "3",
                            "served_by": "champion",
                            "score": round(rng.random(), 4),
                            "verdict": rng.choice(["confirmed", "rejected"]),
                            "true_label": 1,
                            "failure_type": "TWF",
                            "operator": "op-7",
                            "comment": None,
                            "predicted_at": at.isoformat(),
                            "reported_at": at.isoformat(),
                        },
                    )
                    run.events.append(msg.idempotency_key)
                if hour % cadence.alert_every_h == 0:
                    msg = _enqueue(
                        session,
                        stream="alerts",
                        kind="alert.drift",
                        key=None,
                        at=now,
                        payload={
                            "line": line,
                            "feature": "torque",
                            "description": "torque drifted 4.1 sigma",
                        },
                    )
                    run.events.append(msg.idempotency_key)
                if hour % cadence.rollout_every_h == 0:
                    msg = _enqueue(
                        session,
                        stream="rollout",
                        kind="rollout.promoted",
                        key=None,
                        at=now,
                        payload={"line": line, "version": "3"},
                    )
                    run.events.append(msg.idempotency_key)
                if hour % cadence.report_every_h == 0:
                    window = now - dt.timedelta(hours=cadence.report_every_h)
                    report = make_report(plant, line, window, cadence, rng, revision=0)
                    key = str(report.report_id)
                    _enqueue(
                        session,
                        stream="metrics",
                        kind="metrics.report",
                        key=key,
                        payload=report.model_dump(mode="json"),
                        at=now,
                    )
                    run.reports[key] = 0
                    pending_revisions.append(
                        (now + dt.timedelta(hours=cadence.revise_after_h), line, window)
                    )
            while pending_revisions and pending_revisions[0][0] <= now:
                _, line, window = pending_revisions.pop(0)
                report = make_report(plant, line, window, cadence, rng, revision=1)
                key = str(report.report_id)
                _enqueue(
                    session,
                    stream="metrics",
                    kind="metrics.report",
                    key=f"{key}.r1",
                    payload=report.model_dump(mode="json"),
                    at=now,
                )
                run.reports[key] = 1
        sender.drain_once()  # the link is down: every head fails and backs off
        run.budget_reports.append(enforce_budget(factory, max_bytes=budget_bytes))
        with factory() as session:
            accounted = outbox_service.get_size_bytes(session=session)["total"]
        run.peak_accounted_bytes = max(
            run.peak_accounted_bytes, accounted, run.budget_reports[-1].size_before
        )
        run.peak_file_bytes = max(run.peak_file_bytes, _file_bytes(db_file))
        run.hours = hour + 1
    with factory() as session:
        items = outbox_service.list_items(session=session)
    run.messages = len(items)
    for item in items:
        if item.stream == "metrics":
            base = str(item.payload["report_id"])
            run.kept[base] = max(run.kept.get(base, -1), int(item.payload["revision"]))
        elif item.kind == BUDGET_ALERT_KIND:  # the budget's own alert travels too
            run.events.append(item.idempotency_key)
    return run


def drain(factory: sessionmaker[Session], deliverer: Deliverer, *, max_passes: int = 10_000) -> int:
    """Deliver until nothing is pending (the link is back); return the passes it took."""
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)  # every backoff has expired
    sender = OutboxSender(factory, deliverer, clock=lambda: far)
    for passes in range(1, max_passes + 1):
        sender.drain_once(max_messages=5000)
        with factory() as session:
            stats = outbox_service.get_stats(session=session)
        if stats.pending == 0:
            return passes
    raise AssertionError(f"outbox not drained after {max_passes} passes: {stats}")


@dataclass
class HubHoldings:
    """What the hub stores for one plant (read from its SQLite database)."""

    reports: dict[str, int]  # report id -> stored revision
    report_rows: int
    events: Counter[str]


def hub_holdings(hub_db: Path, plant: str) -> HubHoldings:
    """Read the hub's metrics reports and events of ``plant`` straight from its database."""
    with sqlite3.connect(hub_db) as conn:
        reports = conn.execute(
            "SELECT report_id, revision FROM metrics_reports WHERE plant_id = ?", (plant,)
        ).fetchall()
        events = conn.execute(
            "SELECT event_id FROM plant_events WHERE plant_id = ?", (plant,)
        ).fetchall()
    return HubHoldings(
        reports={str(r): int(v) for r, v in reports},
        report_rows=len(reports),
        events=Counter(str(e) for (e,) in events),
    )


def exactly_once(made: OfflineRun, held: HubHoldings) -> dict[str, Any]:
    """Compare what the node kept to send with what the hub holds.

    Returns
    -------
    dict[str, Any]
        ``reports_lost``, ``reports_duplicated``, ``reports_stale`` (held at an older
        revision than the newest the node kept), ``events_lost``, ``events_duplicated``
        and ``delivered_exactly_once`` (all of them zero).
    """
    want = made.kept
    lost = [k for k in want if k not in held.reports]
    stale = [k for k, v in want.items() if k in held.reports and held.reports[k] < v]
    extra = [k for k in held.reports if k not in made.reports]
    events_lost = [e for e in made.events if held.events[e] == 0]
    events_dup = sum(c - 1 for c in held.events.values() if c > 1)
    extra_events = [e for e in held.events if e not in set(made.events)]
    out = {
        "reports_made": len(made.reports),
        "reports_dropped_by_budget": len(set(made.reports) - set(made.kept)),
        "reports_held": len(held.reports),
        "reports_lost": len(lost),
        "reports_duplicated": held.report_rows - len(held.reports) + len(extra),
        "reports_stale": len(stale),
        "events_made": len(made.events),
        "events_lost": len(events_lost),
        "events_duplicated": events_dup + len(extra_events),
    }
    out["delivered_exactly_once"] = not any(
        out[k]
        for k in (
            "reports_lost",
            "reports_duplicated",
            "reports_stale",
            "events_lost",
            "events_duplicated",
        )
    )
    return out
