"""A hub rollout's shadow and canary stages on a real node, decided on the node's own numbers.

The hub (in-process app, SQLite) runs its rollout engine; the node (in-process app) follows
the plant's aliases with :class:`HubFollower` over the plant's token, serves predictions,
and its outbox delivers ``rollout.*`` events (the stats included) to the hub. Nothing is
simulated between them: the engine moves the plant on the samples the node counted, and
aborts on the contract-violation rate the node measured.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from baselines.features import ai4i
from federation.hub_client import HubClient
from federation.schemas.governance import PromotionCreate
from federation.schemas.rollouts import PlantStage, RolloutCreate, RolloutRead, RolloutStatus
from hub.auth import service as auth_service
from hub.governance import flows as governance_flows
from hub.governance import service as governance_service
from hub.rollouts import service as rollouts_service
from hub.rollouts.worker import RolloutWorker
from plant_node.config import NodeSettings
from plant_node.deps import NodeState
from plant_node.main import create_app
from plant_node.outbox.deliverers import HubClientDeliverer
from plant_node.outbox.sender import OutboxSender
from plant_node.serving.follow import HubFollower
from plant_node.serving.hub_source import HubModelSource
from tests.hub import factories
from tests.hub.fixtures import Tokens
from tests.plant_node.keys import auth
from tests.plant_node.serving.conftest import ai4i_model
from tests.plant_node.serving.test_follow import _tar

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

MODEL = "ai4i-mlp"
GATE = """
kind: promotion_gate
id: gate-node
version: 1
title: Automatic gate
description: A verified artifact; no approvals.
rules:
  - name: artifact_verified
    metric: artifact.verified
    op: "=="
    threshold: true
approvals:
  required: 0
"""
PLAN = """
kind: rollout
id: plan-node
version: 1
title: One plant, on the node's numbers
description: shadow, canary, champion at fd001.
waves:
  - name: pilot
    plants: [fd001]
    shadow: {duration_s: 0, min_predictions: 20}
    canary: {share: 1.0, soak_s: 0, min_predictions: 12}
abort:
  - kind: fallback_rate
    name: max_fallback
    max_rate: 0.05
    min_samples: 10
  - kind: http_p99
    name: max_p99
    max_ms: 250
    min_samples: 10
  - kind: contract_violation_rate
    name: max_refused
    max_rate: 0.2
    min_samples: 10
failure_handling: rollback
"""


@dataclass
class Line:
    """The hub, the node and the loop between them."""

    app: FastAPI
    admin: HubClient
    node: TestClient
    state: NodeState
    follower: HubFollower
    sender: OutboxSender
    v2: int
    rid: int = 0

    def step(self, traffic: Callable[[], None] | None = None) -> RolloutRead:
        """One round: the node polls, serves, reports and delivers; the engine ticks once."""
        self.follower.poll()
        if traffic is not None:
            traffic()
        time.sleep(0.02)  # one stats interval
        self.follower.report_stats()
        self.sender.drain_once()
        RolloutWorker(
            session_factory=self.app.state.session_factory,
            store=self.app.state.artifact_store,
            poll_seconds=0.01,
        ).tick()
        with self.app.state.session_factory() as session:
            row = rollouts_service.get_rollout_or_raise(session=session, rollout_id=self.rid)
            return rollouts_service.rollout_read(session=session, rollout=row, steps=True)

    def challenger(self) -> dict[str, Any] | None:
        found = self.node.get("/v1/rollout").json()["ai4i"]
        return found["challenger"]  # type: ignore[no-any-return]

    def predict(self, records: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        response = self.node.post("/v1/predict", json={"baseline": "ai4i", "records": records})
        return response.status_code, response.json()


@pytest.fixture
def client(app: FastAPI, backend: str, _clients: dict[str, tuple[FastAPI, TestClient]]) -> Any:
    """The hub's test client (the serving tests' ``client`` is a node's; ``line`` makes one)."""
    return _clients[backend][1]


@pytest.fixture
def line(
    app: FastAPI,
    client: TestClient,
    tokens: Tokens,
    served_settings: NodeSettings,
    tmp_path: Path,
    ai4i_state: ai4i.Ai4iFeatureState,
) -> Any:
    # The hub: ai4i-mlp 1 champion at fd001 (what the node serves), 2 to roll out
    admin = HubClient(client=client, token=tokens.admin, retries=0)
    digests = {}
    for label in ("1", "2"):
        blob = _tar(ai4i_model(tmp_path / "hub", ai4i_state, label))
        admin.upload_artifact(blob)
        digests[label] = hashlib.sha256(blob).hexdigest()
    with app.state.session_factory() as session:
        factories.model(session, MODEL, task="failure_classification", dataset="ai4i")
        recipe = factories.recipe(session)
        v1 = factories.version(
            session, MODEL, "1", recipe_id=recipe.id, artifact_digest=digests["1"]
        )
        v2 = factories.version(
            session, MODEL, "2", recipe_id=recipe.id, artifact_digest=digests["2"],
            parent_id=v1.id,
        )  # fmt: skip
        principal = auth_service.authenticate(session=session, token=tokens.admin)
        governance_service.publish_policy(session=session, text=GATE, actor="test")
        governance_service.publish_policy(session=session, text=PLAN, actor="test")
        governance_flows.request_promotion(
            session=session, store=app.state.artifact_store, principal=principal,
            promotion_in=PromotionCreate(version_id=v1.id, plant_id="fd001", policy="gate-node@1"),
        )  # fmt: skip
    # The node of fd001, serving 1 (the canary answers every request: share 1.0)
    settings = served_settings.model_copy(
        update={"plant_id": "fd001", "scheduler_enabled": False, "canary_fraction": 1.0}
    )
    plant = HubClient(client=client, token=tokens.plant, retries=0)
    with TestClient(create_app(settings), headers=auth()) as node:
        state: NodeState = node.app.state.node  # type: ignore[attr-defined]
        assert state.serving is not None
        follower = HubFollower(
            client=plant,
            plant_id="fd001",
            serving=state.serving,
            source=HubModelSource(plant, "fd001"),
            session_factory=state.session_factory,
            stats_interval_s=0.01,
        )
        sender = OutboxSender(state.session_factory, HubClientDeliverer(plant, "fd001"))
        yield Line(app, admin, node, state, follower, sender, v2.id)


def _stage(rollout: RolloutRead) -> PlantStage:
    return rollout.plants[0].stage


def test_a_shadow_and_canary_stage_pass_on_the_nodes_numbers(
    line: Line, ai4i_records: list[dict[str, Any]]
) -> None:
    # Prepare
    line.follower.poll()
    line.rid = line.admin.start_rollout(
        RolloutCreate(plan="plan-node@1", version_id=line.v2, gate="gate-node@1")
    ).id

    def traffic(rows: int) -> Callable[[], None]:
        def send() -> None:
            for start in range(0, rows, 4):
                status, body = line.predict(ai4i_records[start % 16 : start % 16 + 4])
                assert status == 200, body
                answers.append(body["predictions"][0]["model_version"])

        return send

    answers: list[str] = []

    # Execute: the engine stages shadow; the node stages it and answers from 1
    shadow = line.step()
    assert _stage(shadow) is PlantStage.SHADOW
    waiting = line.step(traffic(12))  # 12 shadow rows < 20: the engine waits
    assert _stage(waiting) is PlantStage.SHADOW
    staged = line.challenger()
    assert staged is not None and (staged["version"], staged["mode"]) == ("2", "shadow")
    assert set(answers) == {"1"}
    canary = line.step(traffic(12))  # 24 rows: canary
    assert _stage(canary) is PlantStage.CANARY
    answers.clear()
    held = line.step(traffic(8))  # the node moved to canary: 8 canary rows < 12
    staged = line.challenger()
    assert staged is not None and (staged["version"], staged["mode"]) == ("2", "canary")
    assert set(answers) == {"2"}  # share 1.0: the canary answers
    assert _stage(held) is PlantStage.CANARY
    rounds = [line.step(traffic(8))]  # 16 canary rows: promoted through the gate
    for _ in range(4):
        if rounds[-1].status is not RolloutStatus.RUNNING:
            break
        rounds.append(line.step())
    done = rounds[-1]

    # Assert: the node serves 2, withdrew the challenger, and the hub counted its samples
    assert done.status is RolloutStatus.COMPLETED, [s.reason for s in done.steps or []]
    assert _stage(done) in (PlantStage.CHAMPION, PlantStage.DONE)
    runtime = line.state.serving.runtimes["ai4i"]  # type: ignore[union-attr]
    assert runtime.current is not None and runtime.current.version == "2"
    assert line.challenger() is None
    reasons = " | ".join(s.reason or "" for s in done.steps or [])
    assert "24 predictions" in reasons  # the shadow -> canary step names the node's count
    events = list(line.admin.iter_events("fd001"))
    kinds = [e.kind for e in events if e.kind.startswith("rollout.")]
    assert "rollout.withdrawn" in kinds and "rollout.rolled_back" not in kinds
    shadow_stats = [
        e.payload for e in events
        if e.kind == "rollout.stats" and e.payload.get("role") == "shadow"
    ]  # fmt: skip
    assert shadow_stats and all(p["model"] == MODEL for p in shadow_stats)


def test_a_shadow_stage_aborts_on_the_nodes_contract_violations(
    line: Line, ai4i_records: list[dict[str, Any]]
) -> None:
    # Prepare
    line.follower.poll()
    line.rid = line.admin.start_rollout(
        RolloutCreate(plan="plan-node@1", version_id=line.v2, gate="gate-node@1")
    ).id
    bad = [dict(r, torque_nm=-5.0) for r in ai4i_records[:4]]

    def traffic() -> None:
        for start in range(0, 12, 4):
            assert line.predict(ai4i_records[start : start + 4])[0] == 200
        for _ in range(2):  # 8 of the line's 20 rows refused by the contract while staged
            assert line.predict(bad)[0] == 422

    # Execute
    assert _stage(line.step()) is PlantStage.SHADOW
    aborted = line.step(traffic)
    for _ in range(3):
        if aborted.status is not RolloutStatus.RUNNING:
            break
        aborted = line.step()
    line.follower.poll()  # the hub dropped the shadow alias: the node withdraws it

    # Assert
    assert aborted.status is RolloutStatus.ABORTED, aborted.status
    reasons = " | ".join(s.reason or "" for s in aborted.steps or [])
    assert "rollout.contract_violation_rate 0.4" in reasons, reasons
    assert line.challenger() is None
    runtime = line.state.serving.runtimes["ai4i"]  # type: ignore[union-attr]
    assert runtime.current is not None and runtime.current.version == "1"
    assert line.predict(ai4i_records[:4])[1]["predictions"][0]["model_version"] == "1"
