"""Campaign API: validation, idempotency, listing and cancel (no SuperLink: nothing starts)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.errors import NotFound
from federation.hub_client import HubClient
from federation.schemas.campaigns import CampaignCreate, CampaignStatus
from hub.campaigns import service
from hub.config import HubSettings
from tests.hub.campaigns.conftest import body
from tests.hub.fixtures import Tokens, auth, snapshot

API = "/api/v1"


def test_create_get_and_list(client: TestClient, tokens: Tokens, reg: dict[str, Any]) -> None:
    h = auth(tokens.data_scientist)
    created = client.post(f"{API}/campaigns", json=body(reg, personalize_epochs=1, privacy={
        "clipping_norm": 1.0, "noise_multiplier": 0.5}), headers=h)
    other = client.post(f"{API}/campaigns", json=body(reg, strategy="fedprox"), headers=h)

    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["status"] == "queued" and doc["flower_run_id"] is None
    assert doc["plants"] == ["fd001", "fd002"] and doc["privacy"]["clipping_norm"] == 1.0
    assert doc["created_by"] and doc["round_records"] == [] and doc["version_id"] is None
    got = client.get(f"{API}/campaigns/{doc['id']}", headers=auth(tokens.executive)).json()
    assert got == doc
    page = client.get(f"{API}/campaigns", params={"page_size": 1}, headers=h).json()
    assert [c["id"] for c in page["items"]] == [doc["id"]] and page["next_page_token"]
    rest = client.get(f"{API}/campaigns", params={"page_size": 1,
                      "page_token": page["next_page_token"]}, headers=h).json()
    assert [c["id"] for c in rest["items"]] == [other.json()["id"]]
    none = client.get(f"{API}/campaigns", params={"status": "running"}, headers=h).json()
    assert none["items"] == []


def test_idempotency_key_replays_and_refuses_another_body(
    client: TestClient, tokens: Tokens, reg: dict[str, Any], hub_settings: HubSettings
) -> None:
    h = {**auth(tokens.admin), "Idempotency-Key": "campaign-1"}
    first = client.post(f"{API}/campaigns", json=body(reg), headers=h)
    before = snapshot(hub_settings)
    again = client.post(f"{API}/campaigns", json=body(reg), headers=h)
    other = client.post(f"{API}/campaigns", json=body(reg, rounds=3), headers=h)

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 422 and other.json()["code"] == "idempotency_mismatch"
    assert snapshot(hub_settings) == before


def _bad(reg: dict[str, Any]) -> dict[str, tuple[dict[str, Any], int, str]]:
    return {
        "unknown plant": (body(reg, plants=["fd001", "nowhere"]), 404, "not_found"),
        "unknown model": (body(reg, model="nope"), 404, "not_found"),
        "unknown parent": (body(reg, parent_version_id=999), 404, "not_found"),
        "unknown recipe": (body(reg, recipe_id=999), 404, "not_found"),
        "draft recipe": (body(reg, recipe_id=reg["draft"]), 409, "conflict"),
        "parent of another model": (body(reg, parent_version_id=reg["foreign"]), 422,
                                    "invalid_input"),
        "parent without artifact": (body(reg, parent_version_id=reg["bare"]), 422,
                                    "invalid_input"),
        "min participants above plants": (body(reg, min_participants=3), 422, "invalid_input"),
        "duplicate plant": (body(reg, plants=["fd001", "fd001"]), 422, "invalid_input"),
        "zero rounds": (body(reg, rounds=0), 422, "invalid_input"),
        "too many rounds": (body(reg, rounds=101), 422, "invalid_input"),
        "zero local epochs": (body(reg, local_epochs=0), 422, "invalid_input"),
        "unknown strategy": (body(reg, strategy="fedsgd"), 422, "invalid_input"),
        "strategy the recipe forbids": (body(reg, strategy="fedtrimmedavg"), 422,
                                        "invalid_input"),
        "negative noise": (body(reg, privacy={"clipping_norm": 1.0, "noise_multiplier": -1}),
                           422, "invalid_input"),
        "unknown field": (body(reg, epochs=3), 422, "invalid_input"),
    }


CASES = [
    "unknown plant", "unknown model", "unknown parent", "unknown recipe", "draft recipe",
    "parent of another model", "parent without artifact", "min participants above plants",
    "duplicate plant", "zero rounds", "too many rounds", "zero local epochs", "unknown strategy",
    "strategy the recipe forbids", "negative noise", "unknown field",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_4xx_and_changes_nothing(
    case: str, client: TestClient, tokens: Tokens, reg: dict[str, Any], hub_settings: HubSettings
) -> None:
    payload, status, code = _bad(reg)[case]
    before = snapshot(hub_settings)

    response = client.post(f"{API}/campaigns", json=payload, headers=auth(tokens.admin))

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code and response.json()["detail"]
    assert snapshot(hub_settings) == before


def test_cancel(
    client: TestClient, app: FastAPI, tokens: Tokens, reg: dict[str, Any],
    hub_settings: HubSettings,
) -> None:
    h = auth(tokens.admin)
    queued = client.post(f"{API}/campaigns", json=body(reg), headers=h).json()
    done = client.post(f"{API}/campaigns", json=body(reg), headers=h).json()
    with app.state.session_factory() as session:
        row = service.get_campaign_or_raise(session=session, campaign_id=done["id"])
        service.finish(session=session, campaign=row, status=CampaignStatus.SUCCEEDED)

    cancelled = client.post(f"{API}/campaigns/{queued['id']}/cancel", headers=h)
    again = client.post(f"{API}/campaigns/{queued['id']}/cancel", headers=h)
    before = snapshot(hub_settings)
    unknown = client.post(f"{API}/campaigns/999/cancel", headers=h)
    finished = client.post(f"{API}/campaigns/{done['id']}/cancel", headers=h)

    assert cancelled.status_code == again.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["finished_at"]
    assert again.json() == cancelled.json()
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    assert finished.status_code == 409 and "succeeded" in finished.json()["detail"]
    assert snapshot(hub_settings) == before


def test_hub_client_methods(admin_hub: HubClient, reg: dict[str, Any]) -> None:
    created = admin_hub.create_campaign(CampaignCreate(**body(reg)))
    assert admin_hub.get_campaign(created.id) == created
    assert [c.id for c in admin_hub.list_campaigns(status="queued").items] == [created.id]
    assert admin_hub.cancel_campaign(created.id).status == CampaignStatus.CANCELLED
    with pytest.raises(NotFound):
        admin_hub.get_campaign(999)
