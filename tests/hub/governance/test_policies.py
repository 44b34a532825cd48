"""Policies are published once per id@version, validated with paths, listed, shown, diffed."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from federation.errors import Conflict, InvalidInput
from federation.hub_client import HubClient
from hub.config import HubSettings
from policies import standard_documents
from tests.hub.fixtures import Tokens, auth, snapshot
from tests.hub.governance.conftest import gate_yaml

API = "/api/v1"


def test_publish_is_immutable_and_idempotent(
    admin_hub: HubClient, client: TestClient, tokens: Tokens
) -> None:
    # Execute
    first = admin_hub.publish_policy(gate_yaml())
    again = admin_hub.publish_policy(gate_yaml())
    raw_again = client.post(
        f"{API}/policies",
        content=gate_yaml(),
        headers={**auth(tokens.admin), "Content-Type": "application/yaml"},
    )
    with pytest.raises(Conflict) as changed:
        admin_hub.publish_policy(gate_yaml(threshold=25.0))
    second = admin_hub.publish_policy(gate_yaml(version=2, threshold=22.5))
    as_json = admin_hub.publish_policy(json.dumps({**second.document, "version": 3}))

    # Assert
    assert first.created and first.ref == "gate-test@1" and first.kind == "promotion_gate"
    assert not again.created and again.sha256 == first.sha256
    assert raw_again.status_code == 200
    assert changed.value.code.value == "conflict" and "gate-test@1" in changed.value.detail
    assert as_json.created and as_json.ref == "gate-test@3"
    assert admin_hub.get_policy("gate-test@1").document["rules"][0]["threshold"] == 20.0
    # Addressed as gates and requests name it (id@version), or by id and version.
    h = auth(tokens.admin)
    by_ref = client.get(f"{API}/policies/gate-test@2", headers=h)
    by_parts = client.get(f"{API}/policies/gate-test/versions/2", headers=h)
    assert by_ref.status_code == 200 and by_ref.json() == by_parts.json()
    assert by_ref.json()["ref"] == "gate-test@2"
    assert client.get(f"{API}/policies/gate-test@9", headers=h).status_code == 404
    malformed = client.get(f"{API}/policies/gate-test", headers=h)
    assert malformed.status_code == 422 and malformed.json()["code"] == "invalid_input"
    assert [p.ref for p in admin_hub.iter_policies(policy_id="gate-test")] == [
        "gate-test@1",
        "gate-test@2",
        "gate-test@3",
    ]
    diff = admin_hub.diff_policies("gate-test@1", "gate-test@2")
    assert {(c.field, c.a, c.b) for c in diff.changes} == {
        ("version", 1, 2),
        ("rules.0.threshold", 20.0, 22.5),
    }


def test_bad_documents_are_422_with_paths_and_change_nothing(
    admin_hub: HubClient, client: TestClient, tokens: Tokens, hub_settings: HubSettings
) -> None:
    # Prepare
    before = snapshot(hub_settings)
    h = {**auth(tokens.admin), "Content-Type": "application/yaml"}
    unknown_metric = gate_yaml().replace("validation.rmse", "validation.rmsee")
    bad_threshold = gate_yaml().replace("threshold: 20.0", "threshold: [1, 2]")

    # Execute
    syntax = client.post(f"{API}/policies", content="kind: [unclosed", headers=h)
    metric = client.post(f"{API}/policies", content=unknown_metric, headers=h)
    threshold = client.post(f"{API}/policies", content=bad_threshold, headers=h)
    with pytest.raises(InvalidInput) as via_client:
        admin_hub.publish_policy(unknown_metric)

    # Assert
    for r in (syntax, metric, threshold):
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["code"] == "invalid_input" and body["errors"]
        assert all("path" in e and "message" in e for e in body["errors"])
    assert any(e["path"] == "rules.0.metric" for e in metric.json()["errors"])
    assert any(e["path"].startswith("rules.0.threshold") for e in threshold.json()["errors"])
    assert via_client.value.errors and via_client.value.errors[0]["path"] == "rules.0.metric"
    assert snapshot(hub_settings) == before


def test_every_shipped_standard_document_publishes(admin_hub: HubClient) -> None:
    from pathlib import Path

    import policies

    folder = Path(policies.__file__).parent / "documents"
    published = {admin_hub.publish_policy(p.read_text()).ref for p in folder.glob("*.yaml")}
    assert published == set(standard_documents())
    assert {p.kind for p in admin_hub.iter_policies()} >= {"promotion_gate", "rollout"}


def test_oversized_document_is_413(client: TestClient, tokens: Tokens) -> None:
    big = gate_yaml() + "#" + "x" * (300 * 1024) + "\n"
    r = client.post(
        f"{API}/policies",
        content=iter([big.encode()]),  # streamed: no Content-Length to trust
        headers={**auth(tokens.admin), "Content-Type": "application/yaml"},
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
