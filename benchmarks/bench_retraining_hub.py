"""Hub half of the retraining benchmark: deciding requests, redeliveries, the chain query.

In-process against a migrated SQLite hub (``TestClient``, the real routes and services):
12 plants run the model; each sends drift requests over 30 simulated days, every six hours,
with evidence that sometimes does not fire, sometimes lacks labels, and otherwise lands in
or out of the trigger's cooldown and daily budget. Writes
``benchmarks/results/retraining_hub.json``. The node-side figures of issue 17
(``chunks_to_trigger``, ``recovered_fraction``, ...) belong to ``bench_retraining``.

- ``decision_p50_ms`` / ``decision_p95_ms``: ``POST /api/v1/plants/{p}/retraining-requests``
  (checks, policy evaluation, history, stored request and audit entry in one transaction).
- ``decisions``: count per decision; ``refusal_reasons``: count per reason kind.
- ``redelivered`` / ``redelivery_new_rows``: every request sent again (must add 0 rows and 0
  audit entries; ``redelivery_p95_ms`` is its cost).
- ``chain_p95_ms``: ``GET .../retraining-requests/{id}/chain``.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "retraining_hub.json"
POLICY = """
kind: retraining
id: retrain-bench
version: 1
title: Bench triggers
description: drift for 3 chunks with 50 new labels; 12 h cooldown, 1 a day.
federated_min_plants: 3
triggers:
  - name: drift
    kind: drift_sustained
    chunks: 3
    cooldown_s: 43200
    daily_budget: 1
    min_evidence: 50
"""


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def run(quick: bool = False) -> dict[str, Any]:
    """Measure; print a summary; write the JSON unless ``quick``."""
    from fastapi.testclient import TestClient

    from federation.schemas.auth import Role, TokenCreate
    from federation.schemas.registry import AliasName
    from hub import migrations
    from hub.auth import service as auth_service
    from hub.config import HubSettings
    from hub.governance import service as governance_service
    from hub.main import create_app
    from hub.registry import service as registry_service
    from tests.hub import factories

    plants = [f"p{i:02d}" for i in range(4 if quick else 12)]
    days = 3 if quick else 30
    rng = random.Random(17)
    with tempfile.TemporaryDirectory() as tmp:
        settings = HubSettings(
            database_url=f"sqlite:///{tmp}/hub.db", artifact_root=Path(tmp) / "art",
            fleet_worker=False,
        )
        migrations.upgrade(settings)
        app = create_app(settings)
        with TestClient(app) as client:
            with app.state.session_factory() as session:
                admin = auth_service.create_token(
                    session=session, token_in=TokenCreate(role=Role.ADMIN), actor="bench"
                ).token
                for plant in plants:
                    factories.plant(session, plant)
                factories.model(session)
                version = factories.version(session, label="1.0")
                for plant in plants:
                    registry_service.point_alias(
                        session=session, plant_id=plant, model="turbofan-rul",
                        alias=AliasName.CHAMPION, version_id=version.id, actor="bench",
                    )
                session.commit()
                governance_service.publish_policy(session=session, text=POLICY, actor="bench")
            headers = {"Authorization": f"Bearer {admin}"}
            start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
            bodies: list[tuple[str, dict[str, Any]]] = []
            for step in range(days * 4):
                fired = start + dt.timedelta(hours=6 * step)
                for plant in plants:
                    roll = rng.random()
                    evidence = {
                        "drift.sustained_chunks": 1 if roll < 0.2 else 4,
                        "labels.new": 10 if 0.2 <= roll < 0.35 else 120,
                    }
                    bodies.append((plant, {
                        "id": uuid.uuid4().hex, "model": "turbofan-rul",
                        "version_id": version.id, "policy": "retrain-bench@1",
                        "trigger": "drift", "condition": "drift_sustained",
                        "fired_at": fired.isoformat(), "evidence": evidence,
                    }))
            decide_ms: list[float] = []
            decisions: dict[str, int] = {}
            reasons: dict[str, int] = {}
            for plant, body in bodies:
                t0 = time.perf_counter()
                r = client.post(
                    f"/api/v1/plants/{plant}/retraining-requests", json=body, headers=headers
                )
                decide_ms.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 201, r.text
                read = r.json()
                decisions[read["decision"]] = decisions.get(read["decision"], 0) + 1
                if read["decision"] == "refused":
                    kind = read["reasons"][0].split(":")[0].split(" fired")[0]
                    kind = "cooldown" if "cooling down" in kind else (
                        "daily budget" if "budget" in kind else kind
                    )
                    reasons[kind] = reasons.get(kind, 0) + 1
            audit_before = client.get(
                "/api/v1/audit", params={"action": "retraining.decide", "page_size": 1},
                headers=headers,
            )
            assert audit_before.status_code == 200
            redeliver_ms: list[float] = []
            new_rows = 0
            for plant, body in bodies:
                t0 = time.perf_counter()
                r = client.post(
                    f"/api/v1/plants/{plant}/retraining-requests", json=body, headers=headers
                )
                redeliver_ms.append((time.perf_counter() - t0) * 1000)
                new_rows += r.status_code == 201
            with app.state.session_factory() as session:
                from sqlalchemy import func, select

                from hub.audit.models import AuditEntry
                from hub.retraining.models import RetrainingRequest

                rows = session.scalar(select(func.count()).select_from(RetrainingRequest))
                audited = session.scalar(
                    select(func.count()).select_from(AuditEntry)
                    .where(AuditEntry.action == "retraining.decide")
                )
            chain_ms: list[float] = []
            for plant, body in rng.sample(bodies, min(300, len(bodies))):
                t0 = time.perf_counter()
                r = client.get(
                    f"/api/v1/plants/{plant}/retraining-requests/{body['id']}/chain",
                    headers=headers,
                )
                chain_ms.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200
    out: dict[str, Any] = {
        "backend": "sqlite",
        "plants": len(plants),
        "simulated_days": days,
        "requests": len(bodies),
        "decision_p50_ms": round(statistics.median(decide_ms), 2),
        "decision_p95_ms": _p(decide_ms, 0.95),
        "decisions": dict(sorted(decisions.items())),
        "refusal_reasons": dict(sorted(reasons.items())),
        "stored_requests": rows,
        "decide_audit_entries": audited,
        "redelivered": len(bodies),
        "redelivery_new_rows": new_rows,
        "redelivery_p95_ms": _p(redeliver_ms, 0.95),
        "chain_p95_ms": _p(chain_ms, 0.95),
        "quick": quick,
    }
    print(json.dumps(out, indent=2))
    if not quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    return out
