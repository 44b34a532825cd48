"""Retraining requests on the hub: decided by policy, idempotent, audited, explained."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.errors import Conflict, Forbidden, InvalidInput, NotFound
from federation.hub_client import HubClient
from federation.schemas.registry import AliasName
from federation.schemas.retraining import RetrainingDecision, RetrainingRequestCreate
from hub.governance import service as governance_service
from hub.registry import service as registry_service
from tests.hub import factories
from tests.hub.fixtures import Tokens, auth

POLICY_YAML = """
kind: retraining
id: retrain-test
version: 1
title: Test triggers
description: Drift for 3 chunks with 50 new labels; one a day, six hours apart.
federated_min_plants: 2
triggers:
  - name: drift
    kind: drift_sustained
    chunks: 3
    cooldown_s: 21600
    daily_budget: 2
    min_evidence: 50
  - name: mix
    kind: product_mix_change
    min_evidence: 0
"""

PROMOTION_YAML = """
kind: promotion_gate
id: gate-x
version: 1
title: A gate
description: not a retraining policy.
rules:
  - name: max_rmse
    metric: validation.rmse
    op: "<="
    threshold: 20.0
"""

T0 = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
FIVE_HOURS = dt.timedelta(hours=5)


@dataclass
class Setup:
    app: FastAPI
    client: TestClient
    tokens: Tokens
    admin: HubClient
    plant: HubClient
    version_id: int

    def body(self, **overrides: Any) -> RetrainingRequestCreate:
        fields: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "model": "turbofan-rul",
            "version_id": self.version_id,
            "policy": "retrain-test@1",
            "trigger": "drift",
            "condition": "drift_sustained",
            "fired_at": T0,
            "evidence": {"drift.sustained_chunks": 4, "labels.new": 120},
            "labelled_window": 300,
        }
        fields.update(overrides)
        return RetrainingRequestCreate(**fields)


@pytest.fixture
def setup(app: FastAPI, client: TestClient, tokens: Tokens) -> Setup:
    with app.state.session_factory() as session:
        factories.plant(session, "fd003")
        factories.model(session)
        factories.model(session, "ai4i-failure", task="failure_classification", dataset="ai4i")
        version = factories.version(session, label="1.0")
        for plant in ("fd001", "fd002"):
            registry_service.point_alias(
                session=session, plant_id=plant, model="turbofan-rul",
                alias=AliasName.CHAMPION, version_id=version.id, actor="test",
            )
        session.commit()
        governance_service.publish_policy(session=session, text=POLICY_YAML, actor="test")
        governance_service.publish_policy(session=session, text=PROMOTION_YAML, actor="test")
    return Setup(
        app=app, client=client, tokens=tokens,
        admin=HubClient(client=client, token=tokens.admin, retries=0),
        plant=HubClient(client=client, token=tokens.plant, retries=0),
        version_id=version.id,
    )


def test_local_fine_tune_then_federated_with_reasons_and_audit(setup: Setup) -> None:
    first = setup.plant.request_retraining("fd001", setup.body())
    assert first.decision is RetrainingDecision.LOCAL_FINE_TUNE
    assert first.plant_id == "fd001"
    assert "federated_min_plants 2" in first.reasons[0]
    # fd002 fires on the same change two hours later: two plants, a federated campaign.
    second = setup.admin.request_retraining(
        "fd002", setup.body(fired_at=T0 + dt.timedelta(hours=2))
    )
    assert second.decision is RetrainingDecision.FEDERATED
    assert "fd001, fd002" in second.reasons[0]
    chain = setup.admin.retraining_chain("fd002", second.id)
    assert chain.request.decision is second.decision
    # This version names no recipe, so no training can start: recorded, with the reason.
    assert [e.action for e in chain.audit] == ["retraining.decide", "retraining.candidate"]
    assert chain.request.candidate_outcome == "training_failed"
    assert "names no recipe" in chain.request.reasons[-1]
    entry = chain.audit[0]
    assert entry.subject == f"plant/fd002/retraining/{second.id}"
    assert entry.after is not None and entry.after["decision"] == "federated"
    assert entry.after["plants"] == ["fd001", "fd002"]
    assert chain.candidate is None and chain.promotion is None


def test_redelivery_is_idempotent_and_a_reused_id_conflicts(setup: Setup) -> None:
    body = setup.body()
    url = "/api/v1/plants/fd001/retraining-requests"
    payload = body.model_dump(mode="json")
    created = setup.client.post(url, json=payload, headers=auth(setup.tokens.plant))
    again = setup.client.post(url, json=payload, headers=auth(setup.tokens.plant))
    assert (created.status_code, again.status_code) == (201, 200)
    assert created.json() == again.json()
    listed = list(setup.admin.iter_retraining_requests(plant_id="fd001"))
    assert [r.id for r in listed] == [body.id]
    decisions = [
        e for e in setup.admin.iter_audit() if e.action == "retraining.decide"
    ]
    assert len(decisions) == 1
    changed = body.model_copy(update={"evidence": {"drift.sustained_chunks": 9}})
    with pytest.raises(Conflict):
        setup.plant.request_retraining("fd001", changed)


def test_refusals_name_their_reason(setup: Setup) -> None:
    few = setup.plant.request_retraining(
        "fd001", setup.body(evidence={"drift.sustained_chunks": 4, "labels.new": 10})
    )
    assert few.decision is RetrainingDecision.REFUSED
    assert few.reasons == [
        "not enough new labels: labels.new 10 < 50 needed (policy retrain-test@1, trigger drift)"
    ]
    weak = setup.plant.request_retraining(
        "fd001", setup.body(evidence={"drift.sustained_chunks": 2, "labels.new": 100})
    )
    assert weak.decision is RetrainingDecision.REFUSED
    assert "does not fire the trigger" in weak.reasons[0]
    ok = setup.plant.request_retraining("fd001", setup.body())
    assert ok.decision is RetrainingDecision.LOCAL_FINE_TUNE
    # An hour later: inside the 6 h cooldown of the accepted one (refused ones do not count).
    cool = setup.plant.request_retraining("fd001", setup.body(fired_at=T0 + dt.timedelta(hours=1)))
    assert cool.decision is RetrainingDecision.REFUSED
    assert "cooling down: fired 3600 s ago, cooldown 21600 s" in cool.reasons[0]
    # Times without a zone are UTC; other zones are converted (09:00-05:00 is 14:00 UTC,
    # the cooldown's end: accepted, the day's second).
    naive = setup.plant.request_retraining(
        "fd001", setup.body(fired_at=dt.datetime(2026, 12, 7, 9, 0))
    )
    assert "fired 3600 s ago" in naive.reasons[0]
    zoned = setup.plant.request_retraining(
        "fd001",
        setup.body(fired_at=dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.timezone(-FIVE_HOURS))),
    )
    assert zoned.decision is RetrainingDecision.LOCAL_FINE_TUNE
    spent = setup.plant.request_retraining(
        "fd001", setup.body(fired_at=T0 + dt.timedelta(hours=14))
    )
    assert spent.decision is RetrainingDecision.REFUSED
    assert "spent its daily budget (2)" in spent.reasons[0]
    # The next UTC day has a fresh budget.
    tomorrow = setup.plant.request_retraining(
        "fd001", setup.body(fired_at=T0 + dt.timedelta(hours=24))
    )
    assert tomorrow.decision is RetrainingDecision.LOCAL_FINE_TUNE
    refused = list(setup.admin.iter_retraining_requests(decision="refused", page_size=1))
    assert [r.id for r in refused] == [spent.id, naive.id, cool.id, weak.id, few.id]


def test_boolean_trigger_without_label_minimum(setup: Setup) -> None:
    mix = setup.plant.request_retraining(
        "fd001",
        setup.body(
            trigger="mix", condition="product_mix_change",
            evidence={"line.product_mix_changed": 1},
        ),
    )
    assert mix.decision is RetrainingDecision.LOCAL_FINE_TUNE
    unchanged = setup.plant.request_retraining(
        "fd001",
        setup.body(
            trigger="mix", condition="product_mix_change",
            evidence={"line.product_mix_changed": 0},
        ),
    )
    assert unchanged.decision is RetrainingDecision.REFUSED


def test_bad_requests_are_problems(setup: Setup) -> None:
    # fd003 runs nothing, ai4i-failure runs nowhere: 403.
    with pytest.raises(Forbidden, match="does not run model"):
        setup.admin.request_retraining("fd003", setup.body())
    with pytest.raises(Forbidden, match="does not run model 'ai4i-failure'"):
        setup.plant.request_retraining("fd001", setup.body(model="ai4i-failure"))
    # A plant token acts only for its own plant.
    with pytest.raises(Forbidden, match="bound to plant"):
        setup.plant.request_retraining("fd002", setup.body())
    with pytest.raises(InvalidInput, match="not a retraining policy"):
        setup.plant.request_retraining("fd001", setup.body(policy="gate-x@1"))
    with pytest.raises(NotFound):
        setup.plant.request_retraining("fd001", setup.body(policy="nope@1"))
    with pytest.raises(InvalidInput, match="has no trigger 'other'"):
        setup.plant.request_retraining("fd001", setup.body(trigger="other"))
    with pytest.raises(InvalidInput, match="is a drift_sustained trigger"):
        setup.plant.request_retraining("fd001", setup.body(condition="schedule"))
    response = setup.client.post(
        "/api/v1/plants/fd001/retraining-requests",
        json={"id": "x", "model": "turbofan-rul"},
        headers=auth(setup.tokens.plant),
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert list(setup.admin.iter_retraining_requests()) == []
    with pytest.raises(NotFound):
        setup.admin.get_retraining_request("fd001", "missing")
    with pytest.raises(NotFound, match="not produced by a retraining"):
        setup.admin.why_version(setup.version_id)
    # Executives read, plants do not list the fleet.
    with pytest.raises(Forbidden):
        setup.plant.list_retraining_requests()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cli_lists_and_shows(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    import federation.hub_client
    from hub.cli import app as hub_cli

    def in_process(url: str, *, token: str | None = None) -> HubClient:
        return HubClient(client=setup.client, token=token, retries=0)

    monkeypatch.setattr(federation.hub_client, "HubClient", in_process)
    done = setup.plant.request_retraining("fd001", setup.body())
    refused = setup.plant.request_retraining(
        "fd001", setup.body(evidence={"drift.sustained_chunks": 1, "labels.new": 99})
    )
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(hub_cli, ["retraining", *args, "--token", setup.tokens.admin])
        assert result.exit_code == 0, result.output
        return result.output

    listed = json.loads(run("list", "--format", "json"))
    only_refused = json.loads(run("list", "--decision", "refused", "--format", "json"))
    table = run("list", "--plant", "fd001")
    shown = run("show", "fd001", done.id)
    missing = runner.invoke(
        hub_cli, ["retraining", "show", "fd001", "nope", "--token", setup.tokens.admin]
    )
    assert [r["id"] for r in listed] == [refused.id, done.id]
    assert [r["id"] for r in only_refused] == [refused.id]
    assert "local_fine_tune" in table and "refused" in table
    assert "retraining.decide" in shown and "drift.sustained_chunks=4" in shown
    assert missing.exit_code == 1 and "no retraining request" in missing.output
