"""Plant events: idempotent by event id; a plant writes only its own."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hub.config import HubSettings
from tests.hub.fixtures import Tokens, auth, snapshot

API = "/api/v1"


def _event(event_id: str, **extra: object) -> dict[str, object]:
    return {
        "id": event_id,
        "kind": "drift_alert",
        "occurred_at": "2026-11-23T10:00:00Z",
        "payload": {"psi": 0.3},
        **extra,
    }


def test_redelivery_is_idempotent(client: TestClient, tokens: Tokens) -> None:
    h = auth(tokens.plant)
    first = client.post(
        f"{API}/plants/fd001/events", json={"events": [_event("e1"), _event("e2")]}, headers=h
    )
    again = client.post(
        f"{API}/plants/fd001/events", json={"events": [_event("e2"), _event("e3")]}, headers=h
    )
    listed = client.get(f"{API}/plants/fd001/events", headers=auth(tokens.executive)).json()

    assert first.json() == {"accepted": 2, "duplicates": []}
    assert again.json() == {"accepted": 1, "duplicates": ["e2"]}
    assert [e["id"] for e in listed["items"]] == ["e1", "e2", "e3"]
    assert listed["items"][0]["plant_id"] == "fd001"


def test_same_id_with_other_content_conflicts_and_stores_nothing(
    client: TestClient, tokens: Tokens, hub_settings: HubSettings
) -> None:
    h = auth(tokens.plant)
    client.post(f"{API}/plants/fd001/events", json={"events": [_event("e1")]}, headers=h)
    before = snapshot(hub_settings)
    r = client.post(
        f"{API}/plants/fd001/events",
        json={"events": [_event("e9"), _event("e1", kind="other")]},
        headers=h,
    )
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    assert snapshot(hub_settings) == before


def test_plant_cannot_write_for_another_plant(client: TestClient, tokens: Tokens) -> None:
    r = client.post(
        f"{API}/plants/fd002/events", json={"events": [_event("x")]}, headers=auth(tokens.plant)
    )
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_unknown_plant_is_404(client: TestClient, tokens: Tokens) -> None:
    r = client.post(
        f"{API}/plants/nope/events", json={"events": [_event("x")]}, headers=auth(tokens.admin)
    )
    assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_newest_fields_of_kind_reads_a_prefix_as_a_range(
    client: TestClient, tokens: Tokens
) -> None:
    from fastapi import FastAPI

    from hub.events import service as events_service

    # Arrange: kinds on both sides of the range "alert." .. "alert/".
    kinds = ["alert.raised", "alerta", "alert", "alert/x", "rollout.serving", "alert.cleared"]
    events = [
        _event(f"k{i}", kind=kind, payload={"model": "m", "model_version": f"v{i}", "n": i})
        for i, kind in enumerate(kinds)
    ]
    posted = client.post(f"{API}/plants/fd001/events", json={"events": events},
                         headers=auth(tokens.plant))  # fmt: skip
    assert posted.status_code == 200, posted.text
    app: FastAPI = client.app  # type: ignore[assignment]

    # Execute
    with app.state.session_factory() as session:
        alerts = events_service.newest_fields_of_kind(
            session=session, plant_ids=None, kind_prefix="alert.", fields=("model_version", "x"),
            limit=10,
        )  # fmt: skip
        serving = events_service.newest_fields_of_kind(
            session=session, plant_ids=["fd001"], kind_prefix="rollout.serving",
            fields=("model", "n"), limit=10,
        )  # fmt: skip

    # Assert: newest first, only the prefix's kinds; fields as text, absent ones None.
    assert [(p, k, f) for p, k, _, f in alerts] == [
        ("fd001", "alert.cleared", {"model_version": "v5", "x": None}),
        ("fd001", "alert.raised", {"model_version": "v0", "x": None}),
    ]
    assert [(k, f) for _, k, _, f in serving] == [("rollout.serving", {"model": "m", "n": "4"})]
