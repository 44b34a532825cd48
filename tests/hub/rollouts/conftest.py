"""Fleet fixtures: four plants running v1 as champion, v2 to roll out, a plan and a gate."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.errors import NotFound
from federation.hub_client import HubClient
from federation.schemas.events import PlantEventCreate
from federation.schemas.governance import PromotionCreate
from federation.schemas.registry import AliasName
from federation.schemas.rollouts import RolloutCreate, RolloutRead, RolloutStatus
from hub.audit import service as audit_service
from hub.auth import service as auth_service
from hub.governance import flows as governance_flows
from hub.governance import service as governance_service
from hub.rollouts import service as rollouts_service
from hub.rollouts.worker import RolloutWorker
from tests.hub import factories
from tests.hub.fixtures import Tokens, auth

BLOB = b"fleet-model-bytes"
DIGEST = hashlib.sha256(BLOB).hexdigest()
PLANTS = ("fd001", "fd002", "fd003", "fd004")
#: Marks a test to run on SQLite only (the PostgreSQL run covers the engine's main paths).
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])

GATE_YAML = """
kind: promotion_gate
id: gate-auto
version: 1
title: Automatic gate
description: RMSE bound and a verified artifact; no approvals (rollout tests).
rules:
  - name: max_rmse
    metric: validation.rmse
    op: "<="
    threshold: 20.0
  - name: artifact_verified
    metric: artifact.verified
    op: "=="
    threshold: true
approvals:
  required: 0
"""

PLAN_YAML = """
kind: rollout
id: plan-test
version: {version}
title: Two waves
description: pilot fd001, then the rest of the fleet.
waves:
  - name: pilot
    plants: [fd001]
    shadow: {{duration_s: 0, min_predictions: 10}}
    canary: {{share: 0.2, soak_s: 0, min_predictions: 5}}
  - name: rest
    fleet_share: 1.0
    shadow: {{duration_s: 0, min_predictions: 10}}
    canary: {{share: 0.5, soak_s: 0, min_predictions: 0}}
abort:
  - kind: fallback_rate
    name: max_fallback
    max_rate: 0.05
    min_samples: 10
  - kind: http_p99
    name: max_p99
    max_ms: 250
    min_samples: 10
failure_handling: {handling}
{extra}
"""


def plan_yaml(*, version: int = 1, handling: str = "rollback", extra: str = "") -> str:
    """The test plan, optionally another version, failure handling or extra keys."""
    return PLAN_YAML.format(version=version, handling=handling, extra=extra)


@dataclass
class Fleet:
    """What the fleet tests act on."""

    app: FastAPI
    client: TestClient
    admin: HubClient
    tokens: Tokens
    v1: int
    v2: int
    audit_start: int = 0

    def report(
        self,
        plant: str,
        *,
        samples: int,
        fallbacks: int = 0,
        p99_ms: float = 20.0,
        version: str = "2.0",
        kind: str = "rollout.stats",
    ) -> None:
        """Post the node's rollout counters for a plant, as its outbox would."""
        self.admin.post_events(
            plant,
            [
                PlantEventCreate(
                    id=uuid.uuid4().hex,
                    kind=kind,
                    occurred_at=dt.datetime.now(dt.UTC),
                    payload={
                        "model_version": version,
                        "model": "turbofan-rul",
                        "stats": {"samples": samples, "fallbacks": fallbacks, "p99_ms": p99_ms},
                    },
                )
            ],
        )

    def report_all(self, *, samples: int) -> None:
        for plant in PLANTS:
            self.report(plant, samples=samples)

    def worker(self) -> RolloutWorker:
        return RolloutWorker(
            session_factory=self.app.state.session_factory,
            store=self.app.state.artifact_store,
            poll_seconds=0.01,
        )

    def start(self, **overrides: Any) -> RolloutRead:
        fields: dict[str, Any] = {
            "plan": "plan-test@1",
            "version_id": self.v2,
            "gate": "gate-auto@1",
        }
        fields.update(overrides)
        return self.admin.start_rollout(RolloutCreate(**fields))

    def drive(
        self,
        rollout_id: int,
        *,
        until: Callable[[RolloutRead], bool] | None = None,
        ticks: int = 30,
    ) -> RolloutRead:
        """Tick a worker until ``until`` holds (default: the rollout left running)."""
        done = until or (lambda r: r.status is not RolloutStatus.RUNNING)
        worker = self.worker()
        row = self.read(rollout_id)
        for _ in range(ticks):
            if done(row):
                return row
            worker.tick()
            row = self.read(rollout_id)
        return row

    def read(self, rollout_id: int) -> RolloutRead:
        """The rollout as the API shows it, read in-process (cheaper than HTTP per tick)."""
        with self.app.state.session_factory() as session:
            row = rollouts_service.get_rollout_or_raise(session=session, rollout_id=rollout_id)
            return rollouts_service.rollout_read(session=session, rollout=row, steps=True)

    def alias(self, plant: str, name: str) -> int | None:
        try:
            return self.admin.get_alias(plant, "turbofan-rul", AliasName(name)).id
        except NotFound:
            return None

    def champion(self, plant: str) -> int | None:
        return self.alias(plant, "champion")

    def actions(self, prefix: str = "") -> list[str]:
        """Actions on the audit trail since the fixture was set up, oldest first."""
        entries = [e for e in self.admin.iter_audit() if e.seq > self.audit_start]
        return [e.action for e in entries if e.action.startswith(prefix)]


@pytest.fixture
def fleet(app: FastAPI, client: TestClient, tokens: Tokens) -> Iterator[Fleet]:
    admin = HubClient(client=client, token=tokens.admin, retries=0)
    assert (
        client.put(
            f"/api/v1/artifacts/sha256/{DIGEST}", content=BLOB, headers=auth(tokens.admin)
        ).status_code
        == 201
    )
    with app.state.session_factory() as session:
        for plant in PLANTS[2:]:
            factories.plant(session, plant)
        factories.model(session)
        recipe = factories.recipe(session)
        common: dict[str, Any] = {"recipe_id": recipe.id, "artifact_digest": DIGEST}
        v1 = factories.version(session, label="1.0", metrics={"rmse": 15.0}, **common)
        v2 = factories.version(
            session, label="2.0", metrics={"rmse": 14.0}, parent_id=v1.id, **common
        )
    # In-process (the HTTP paths are what the tests exercise, not the setup).
    store = app.state.artifact_store
    with app.state.session_factory() as session:
        principal = auth_service.authenticate(session=session, token=tokens.admin)
        governance_service.publish_policy(session=session, text=GATE_YAML, actor="test")
        governance_service.publish_policy(session=session, text=plan_yaml(), actor="test")
        for plant in PLANTS:
            promotion = governance_flows.request_promotion(
                session=session,
                store=store,
                principal=principal,
                promotion_in=PromotionCreate(
                    version_id=v1.id, plant_id=plant, policy="gate-auto@1"
                ),
            )
            assert promotion.promotion.status == "approved"
    with app.state.session_factory() as session:
        start = audit_service.verify(session=session).head_seq
    yield Fleet(
        app=app, client=client, admin=admin, tokens=tokens, v1=v1.id, v2=v2.id, audit_start=start
    )
