"""From decision to candidate: a campaign trains it, validation and the gate decide it."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.hub_client import HubClient
from federation.schemas.campaigns import CampaignFailureCode, CampaignStatus
from federation.schemas.registry import AliasName
from federation.schemas.retraining import (
    CandidateOutcome,
    RetrainingDecision,
    RetrainingRequestCreate,
)
from hub.campaigns import service as campaigns_service
from hub.governance import service as governance_service
from hub.registry import service as registry_service
from hub.retraining.worker import CandidateSettler
from tests.hub import factories
from tests.hub.fixtures import Tokens, auth

BLOB = b"retraining-model-bytes"
DIGEST = hashlib.sha256(BLOB).hexdigest()
POLICY_YAML = """
kind: retraining
id: retrain-cand
version: 1
title: Drift trigger
description: Drift for 3 chunks with 50 new labels.
triggers:
  - name: drift
    kind: drift_sustained
    chunks: 3
    min_evidence: 50
"""
GATE_YAML = """
kind: promotion_gate
id: gate-retrain
version: 1
title: Retraining gate
description: RMSE bound and a verified artifact; approvals {required}.
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
  required: {required}
"""


@dataclass
class Loop:
    app: FastAPI
    client: TestClient
    admin: HubClient
    plant: HubClient
    recipe_id: int
    champion_id: int

    def fire(self) -> Any:
        body = RetrainingRequestCreate(
            id=uuid.uuid4().hex, model="turbofan-rul", version_id=self.champion_id,
            policy="retrain-cand@1", trigger="drift", condition="drift_sustained",
            fired_at=dt.datetime(2026, 12, 7, 9, tzinfo=dt.UTC),
            evidence={"drift.sustained_chunks": 5, "labels.new": 80},
        )
        return self.plant.request_retraining("fd001", body)

    def finish(self, campaign_id: int, *, rmse: float | None, label: str = "2.0") -> int | None:
        """End the campaign as the campaign worker would, with a personalised candidate."""
        with self.app.state.session_factory() as session:
            campaign = campaigns_service.get_campaign_or_raise(
                session=session, campaign_id=campaign_id
            )
            if rmse is None:
                campaigns_service.finish(
                    session=session, campaign=campaign, status=CampaignStatus.FAILED,
                    failure_code=CampaignFailureCode.INTERNAL, failure_detail="plant fell over",
                )
                return None
            common: dict[str, Any] = {
                "recipe_id": self.recipe_id, "artifact_digest": DIGEST,
                "parent_id": self.champion_id,
            }
            fleet = factories.version(session, label=f"{label}-g", metrics={"rmse": 14.5}, **common)
            personal = factories.version(
                session, label=f"{label}-p", metrics={"rmse": rmse}, plant_id="fd001", **common
            )
            campaigns_service.finish(
                session=session, campaign=campaign, status=CampaignStatus.SUCCEEDED,
                version_id=fleet.id, personalized_version_ids={"fd001": personal.id},
            )
            return personal.id

    def settle(self) -> int:
        return CandidateSettler(
            session_factory=self.app.state.session_factory, store=self.app.state.artifact_store,
            gate="gate-retrain@1", poll_seconds=0.01,
        ).tick()

    def champion(self) -> int:
        with self.app.state.session_factory() as session:
            alias = registry_service.get_alias_or_raise(
                session=session, plant_id="fd001", model="turbofan-rul", alias=AliasName.CHAMPION
            )
            return alias.version_id


def _loop(app: FastAPI, client: TestClient, tokens: Tokens, approvals: int) -> Loop:
    assert client.put(
        f"/api/v1/artifacts/sha256/{DIGEST}", content=BLOB, headers=auth(tokens.admin)
    ).status_code == 201
    with app.state.session_factory() as session:
        factories.model(session)
        recipe = factories.recipe(session)
        v1 = factories.version(
            session, label="1.0", metrics={"rmse": 15.0}, recipe_id=recipe.id,
            artifact_digest=DIGEST,
        )
        registry_service.point_alias(
            session=session, plant_id="fd001", model="turbofan-rul", alias=AliasName.CHAMPION,
            version_id=v1.id, actor="test",
        )
        session.commit()
        governance_service.publish_policy(session=session, text=POLICY_YAML, actor="test")
        governance_service.publish_policy(
            session=session, text=GATE_YAML.format(required=approvals), actor="test"
        )
    return Loop(
        app=app, client=client,
        admin=HubClient(client=client, token=tokens.admin, retries=0),
        plant=HubClient(client=client, token=tokens.plant, retries=0),
        recipe_id=recipe.id, champion_id=v1.id,
    )


@pytest.fixture
def loop(app: FastAPI, client: TestClient, tokens: Tokens) -> Loop:
    return _loop(app, client, tokens, approvals=0)


def test_better_candidate_is_promoted_automatically_and_explained(loop: Loop) -> None:
    fired = loop.fire()
    assert fired.decision is RetrainingDecision.LOCAL_FINE_TUNE
    assert fired.candidate_outcome is CandidateOutcome.TRAINING
    campaign = loop.admin.get_campaign(fired.campaign_id)
    assert campaign.plants == ["fd001"] and campaign.parent_version_id == loop.champion_id
    assert campaign.status.value == "queued"
    assert loop.settle() == 0  # the campaign still runs: nothing to settle
    candidate = loop.finish(fired.campaign_id, rmse=13.0)
    assert loop.settle() == 1
    assert loop.champion() == candidate
    chain = loop.admin.why_version(candidate)
    assert chain.request.id == fired.id
    assert chain.request.candidate_outcome is CandidateOutcome.PROMOTED
    assert chain.candidate is not None and chain.candidate.id == candidate
    assert chain.promotion is not None and chain.promotion.status.value == "approved"
    assert chain.promotion.requested_by == "admin:system"
    actions = [e.action for e in chain.audit]
    assert actions[:2] == ["retraining.decide", "campaign.start"]
    assert actions[-1] == "retraining.candidate"
    assert {"promotion.request", "promotion.decide"} <= set(actions)
    assert {e.actor for e in chain.audit[2:]} == {"admin:system"}
    reasons = " ".join(chain.request.reasons)
    assert "plant window" in reasons and "fleet holdout" in reasons
    assert loop.settle() == 0  # settled once


def test_worse_candidate_and_failed_training_are_recorded_not_promoted(loop: Loop) -> None:
    worse = loop.fire()
    loop.finish(worse.campaign_id, rmse=16.0)
    failed = loop.plant.request_retraining(
        "fd001",
        RetrainingRequestCreate(
            **{**worse.model_dump(include=set(RetrainingRequestCreate.model_fields)),
               "id": "second", "fired_at": worse.fired_at + dt.timedelta(days=2)}
        ),
    )
    loop.finish(failed.campaign_id, rmse=None)
    assert loop.settle() == 2
    worse_now = loop.admin.get_retraining_request("fd001", worse.id)
    failed_now = loop.admin.get_retraining_request("fd001", "second")
    assert worse_now.candidate_outcome is CandidateOutcome.VALIDATION_FAILED
    assert "rmse 16 worse than champion 15" in worse_now.reasons[-1]
    assert worse_now.promotion_id is None
    assert failed_now.candidate_outcome is CandidateOutcome.TRAINING_FAILED
    assert "plant fell over" in failed_now.reasons[-1]
    assert loop.champion() == loop.champion_id


@pytest.mark.parametrize("backend", ["sqlite"])
def test_gate_with_approvals_leaves_the_promotion_waiting(
    app: FastAPI, client: TestClient, tokens: Tokens
) -> None:
    loop = _loop(app, client, tokens, approvals=1)
    fired = loop.fire()
    candidate = loop.finish(fired.campaign_id, rmse=12.0)
    loop.settle()
    now = loop.admin.get_retraining_request("fd001", fired.id)
    assert now.candidate_outcome is CandidateOutcome.AWAITING_APPROVAL
    assert now.candidate_version_id == candidate and now.promotion_id is not None
    assert loop.champion() == loop.champion_id


@pytest.mark.parametrize("backend", ["sqlite"])
def test_no_second_campaign_while_one_trains_for_the_plant(loop: Loop) -> None:
    fired = loop.fire()
    again = loop.plant.request_retraining(
        "fd001",
        RetrainingRequestCreate(
            **{**fired.model_dump(include=set(RetrainingRequestCreate.model_fields)),
               "id": "again", "fired_at": fired.fired_at + dt.timedelta(days=2)}
        ),
    )
    assert again.decision is RetrainingDecision.LOCAL_FINE_TUNE
    assert again.campaign_id == fired.campaign_id and again.candidate_outcome is None
    assert f"joins campaign {fired.campaign_id}" in again.reasons[-1]
    assert [c.id for c in loop.admin.iter_campaigns()] == [fired.campaign_id]
    loop.finish(fired.campaign_id, rmse=13.0)
    assert loop.settle() == 1
