"""Recipes: versioned, editable as drafts, immutable once published."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from hub.recipes.models import Recipe
from tests.hub.fixtures import Tokens, auth

API = "/api/v1"
SPEC = {
    "name": "ai4i-mlp",
    "preprocessing": {"scaler": "standard"},
    "features": {"columns": ["torque", "rpm"]},
    "architecture": {"type": "mlp", "hidden": [32, 16]},
    "hyperparameters": {"lr": 0.01},
    "data_contract_version": "ai4i/1",
    "metrics": ["f1"],
    "gates": [{"metric": "f1", "op": ">=", "threshold": 0.6}],
}


def test_versions_auto_increment_and_publish_freezes(client: TestClient, tokens: Tokens) -> None:
    h = auth(tokens.data_scientist)
    v1 = client.post(f"{API}/recipes", json=SPEC, headers=h).json()
    v2 = client.post(f"{API}/recipes", json=SPEC, headers=h).json()
    edited = client.patch(
        f"{API}/recipes/{v1['id']}", json={"hyperparameters": {"lr": 0.02}}, headers=h
    )
    published = client.post(f"{API}/recipes/{v1['id']}/publish", headers=h)
    frozen = client.patch(
        f"{API}/recipes/{v1['id']}", json={"hyperparameters": {"lr": 0.03}}, headers=h
    )

    assert (v1["version"], v2["version"]) == (1, 2)
    assert edited.status_code == 200 and edited.json()["hyperparameters"] == {"lr": 0.02}
    assert published.json()["status"] == "published" and published.json()["published_at"]
    assert frozen.status_code == 409 and frozen.json()["code"] == "conflict"
    assert client.get(f"{API}/recipes/{v1['id']}", headers=h).json()["hyperparameters"] == {
        "lr": 0.02
    }


def test_explicit_version_is_a_natural_key(client: TestClient, tokens: Tokens) -> None:
    h = auth(tokens.admin)
    first = client.post(f"{API}/recipes", json={**SPEC, "version": 3}, headers=h)
    same = client.post(f"{API}/recipes", json={**SPEC, "version": 3}, headers=h)
    other = client.post(
        f"{API}/recipes", json={**SPEC, "version": 3, "metrics": ["auc"]}, headers=h
    )
    assert first.json()["id"] == same.json()["id"]
    assert other.status_code == 409 and other.json()["code"] == "already_exists"


def test_versions_cannot_use_a_draft_recipe(client: TestClient, tokens: Tokens) -> None:
    h = auth(tokens.admin)
    draft = client.post(f"{API}/recipes", json=SPEC, headers=h).json()
    client.post(f"{API}/models", json={"name": "ai4i-failure"}, headers=h)
    r = client.post(
        f"{API}/versions",
        json={"model": "ai4i-failure", "version": "1", "recipe_id": draft["id"]},
        headers=h,
    )
    assert r.status_code == 409 and r.json()["code"] == "conflict"


def test_list_filters_by_status(client: TestClient, tokens: Tokens) -> None:
    h = auth(tokens.admin)
    a = client.post(f"{API}/recipes", json=SPEC, headers=h).json()
    client.post(f"{API}/recipes", json=SPEC, headers=h)
    client.post(f"{API}/recipes/{a['id']}/publish", headers=h)
    page = client.get(
        f"{API}/recipes", params={"status": "published"}, headers=auth(tokens.executive)
    ).json()
    assert [r["id"] for r in page["items"]] == [a["id"]]
    assert client.get(f"{API}/recipes/424242", headers=h).json()["code"] == "not_found"


def test_gates_stored_before_policies_load_as_scoped_rules(
    client: TestClient, tokens: Tokens, session_factory: Any
) -> None:
    # Prepare: a row as the hub stored it before policies/ (plant folded into the metric).
    h = auth(tokens.data_scientist)
    created = client.post(f"{API}/recipes", json=SPEC, headers=h).json()
    legacy = [
        {"metric": "rmse.fd001", "op": "<=", "threshold": 13.9},
        {"metric": "rmse.fd002", "op": "<=", "threshold": 24.6},
        {"metric": "f1", "op": ">=", "threshold": 0.6},
    ]
    with session_factory() as session:
        session.get(Recipe, created["id"]).gates = legacy
        session.commit()
    # Execute
    gates = client.get(f"{API}/recipes/{created['id']}", headers=h).json()["gates"]
    # Assert: both rmse gates kept, each under its own name and plant scope.
    assert [(g["name"], g["metric"], g["scope"], g["threshold"]) for g in gates] == [
        ("rmse_fd001", "validation.rmse", {"level": "plant", "value": "fd001"}, 13.9),
        ("rmse_fd002", "validation.rmse", {"level": "plant", "value": "fd002"}, 24.6),
        ("f1", "validation.f1", {"level": "fleet", "value": None}, 0.6),
    ]
    assert created["gates"][0]["name"] == "f1"


def test_gate_on_unknown_evidence_metric_is_refused(client: TestClient, tokens: Tokens) -> None:
    bad = {**SPEC, "gates": [{"name": "g", "metric": "validation.rmsee", "op": "<=",
                              "threshold": 1}]}
    r = client.post(f"{API}/recipes", json=bad, headers=auth(tokens.data_scientist))
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"
