"""Registry over HTTP: CRUD, filters, pagination, lineage, diff, aliases, and error codes."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.config import HubSettings
from tests.hub.fixtures import Tokens, auth, snapshot

API = "/api/v1"


def _setup_registry(client: TestClient, token: str) -> dict[str, Any]:
    h = auth(token)
    assert (
        client.post(
            f"{API}/models", json={"name": "turbofan-rul", "dataset": "cmapss"}, headers=h
        ).status_code
        == 201
    )
    recipe = client.post(
        f"{API}/recipes",
        json={
            "name": "turbofan-lstm",
            "hyperparameters": {"lr": 0.001},
            "gates": [{"metric": "rmse", "op": "<=", "threshold": 20}],
        },
        headers=h,
    ).json()
    client.post(f"{API}/recipes/{recipe['id']}/publish", headers=h)
    blob = b"onnx-bytes-1"
    digest = hashlib.sha256(blob).hexdigest()
    assert (
        client.put(f"{API}/artifacts/sha256/{digest}", content=blob, headers=h).status_code == 201
    )
    v1 = client.post(
        f"{API}/versions",
        json={
            "model": "turbofan-rul",
            "version": "1.4",
            "recipe_id": recipe["id"],
            "artifact_digest": digest,
            "training_data_fingerprint": "fp-1",
            "code_version": "c1",
            "hyperparameters": {"lr": 0.001, "layers": {"hidden": 64}},
            "metrics": {"rmse": 19.0},
            "tags": {"stage": "candidate"},
        },
        headers=h,
    )
    assert v1.status_code == 201, v1.text
    v2 = client.post(
        f"{API}/versions",
        json={
            "model": "turbofan-rul",
            "version": "1.5",
            "plant_id": "fd001",
            "parent_id": v1.json()["id"],
            "recipe_id": recipe["id"],
            "artifact_digest": digest,
            "training_data_fingerprint": "fp-2",
            "code_version": "c2",
            "hyperparameters": {"lr": 0.0005, "layers": {"hidden": 64}},
            "metrics": {"rmse": 17.5},
            "tags": {"stage": "candidate", "federated": "yes"},
        },
        headers=h,
    )
    assert v2.status_code == 201, v2.text
    return {"recipe": recipe, "digest": digest, "v1": v1.json(), "v2": v2.json()}


def test_version_lineage_is_stored_and_readable(client: TestClient, tokens: Tokens) -> None:
    reg = _setup_registry(client, tokens.data_scientist)

    got = client.get(f"{API}/versions/{reg['v2']['id']}", headers=auth(tokens.executive)).json()
    by_label = client.get(
        f"{API}/models/turbofan-rul/versions/1.5", headers=auth(tokens.admin)
    ).json()

    assert got == by_label
    assert got["parent_id"] == reg["v1"]["id"]
    assert got["recipe_id"] == reg["recipe"]["id"]
    assert got["artifact_digest"] == reg["digest"]
    assert got["training_data_fingerprint"] == "fp-2"
    assert got["code_version"] == "c2"
    assert got["metrics"] == {"rmse": 17.5}
    assert got["created_by"].startswith("data_scientist:")
    assert got["created_at"]


def test_diff_lists_changed_fields_by_dotted_path(client: TestClient, tokens: Tokens) -> None:
    reg = _setup_registry(client, tokens.admin)

    diff = client.get(
        f"{API}/versions/{reg['v1']['id']}/diff/{reg['v2']['id']}", headers=auth(tokens.admin)
    )

    assert diff.status_code == 200
    changes = {c["field"]: (c["a"], c["b"]) for c in diff.json()["changes"]}
    assert changes["version"] == ("1.4", "1.5")
    assert changes["hyperparameters.lr"] == (0.001, 0.0005)
    assert changes["metrics.rmse"] == (19.0, 17.5)
    assert changes["tags.federated"] == (None, "yes")
    assert changes["parent_id"] == (None, reg["v1"]["id"])
    assert "hyperparameters.layers.hidden" not in changes
    assert "recipe_id" not in changes


def test_filter_by_plant_and_tag_and_paginate(client: TestClient, tokens: Tokens) -> None:
    h = auth(tokens.admin)
    client.post(f"{API}/models", json={"name": "m"}, headers=h)
    versions = [
        {
            "model": "m",
            "version": f"0.{i}",
            "plant_id": "fd001" if i % 2 else "fd002",
            "tags": {"stage": "prod" if i % 3 == 0 else "dev"},
        }
        for i in range(12)
    ]
    assert (
        client.post(f"{API}/versions/batch", json={"versions": versions}, headers=h).status_code
        == 201
    )

    seen: list[str] = []
    token = None
    while True:
        params = {"plant_id": "fd001", "tag": "stage=prod", "page_size": 1}
        if token:
            params["page_token"] = token
        page = client.get(f"{API}/versions", params=params, headers=h).json()
        seen += [v["version"] for v in page["items"]]
        token = page.get("next_page_token")
        if not token:
            break

    assert seen == ["0.9", "0.3"]  # odd i (fd001) with i % 3 == 0, newest first
    only_key = client.get(
        f"{API}/versions", params={"tag": "stage", "model": "m"}, headers=h
    ).json()
    assert len(only_key["items"]) == 12


def test_page_token_from_other_filters_is_rejected(client: TestClient, tokens: Tokens) -> None:
    h = auth(tokens.admin)
    page = client.get(f"{API}/plants", params={"page_size": 1}, headers=h).json()
    bad = client.get(
        f"{API}/plants", params={"page_token": page["next_page_token"], "site": "x"}, headers=h
    )
    garbage = client.get(f"{API}/plants", params={"page_token": "%%%"}, headers=h)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_input"
    assert garbage.status_code == 422 and garbage.json()["code"] == "invalid_input"


def test_page_token_with_a_key_of_the_wrong_type_is_rejected(
    client: TestClient, tokens: Tokens
) -> None:
    # Tokens are not signed: one edited to carry a string where an id belongs must be bad
    # input for every keyset list, not an error inside the query.
    from hub.pagination import encode_token

    h = auth(tokens.admin)
    cases = {
        f"{API}/models": encode_token("not-an-id", {"dataset": None}),
        f"{API}/versions": encode_token("x", {
            "model": None, "plant_id": None, "tag": None, "recipe_id": None, "parent_id": None,
        }),
        f"{API}/plants": encode_token(7, {"site": None}),
    }
    for path, token in cases.items():
        r = client.get(path, params={"page_token": token}, headers=h)
        assert r.status_code == 422 and r.json()["code"] == "invalid_input", (path, r.text)


def test_page_size_is_capped(client: TestClient, tokens: Tokens, hub_settings: HubSettings) -> None:
    h = auth(tokens.admin)
    client.post(f"{API}/models", json={"name": "m"}, headers=h)
    n = hub_settings.max_page_size + 5
    batch = [{"model": "m", "version": f"v{i}"} for i in range(n)]
    assert (
        client.post(f"{API}/versions/batch", json={"versions": batch}, headers=h).status_code == 201
    )
    page = client.get(f"{API}/versions", params={"page_size": 10_000}, headers=h).json()
    assert len(page["items"]) == hub_settings.max_page_size
    assert page["next_page_token"]


def test_aliases_and_assignments(client: TestClient, tokens: Tokens) -> None:
    reg = _setup_registry(client, tokens.admin)
    h = auth(tokens.data_scientist)

    put = client.put(
        f"{API}/plants/fd001/aliases/turbofan-rul/challenger",
        json={"version_id": reg["v2"]["id"]},
        headers=h,
    )
    client.put(
        f"{API}/plants/fd001/aliases/turbofan-rul/shadow",
        json={"version_id": reg["v1"]["id"]},
        headers=h,
    )
    alias = client.get(
        f"{API}/plants/fd001/aliases/turbofan-rul/challenger", headers=auth(tokens.plant)
    )
    assignments = client.get(f"{API}/plants/fd001/assignments", headers=auth(tokens.plant))

    assert put.status_code == 200, put.text
    assert alias.status_code == 200 and alias.json()["id"] == reg["v2"]["id"]
    items = {a["alias"]: a for a in assignments.json()["items"]}
    assert set(items) == {"challenger", "shadow"}
    assert items["challenger"]["artifact_digest"] == reg["digest"]
    assert items["challenger"]["artifact_size_bytes"] == len(b"onnx-bytes-1")


def test_champion_is_not_set_or_removed_by_put(client: TestClient, tokens: Tokens) -> None:
    reg = _setup_registry(client, tokens.admin)
    url = f"{API}/plants/fd001/aliases/turbofan-rul/champion"

    put = client.put(url, json={"version_id": reg["v2"]["id"]}, headers=auth(tokens.admin))
    delete = client.delete(url, headers=auth(tokens.admin))

    for r in (put, delete):
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "promotion_required"
        assert "/api/v1/promotions" in r.json()["detail"]
    assert client.get(f"{API}/plants/fd001/aliases", headers=auth(tokens.admin)).json() == {
        "items": []
    }


def test_alias_refuses_version_of_other_plant(client: TestClient, tokens: Tokens) -> None:
    reg = _setup_registry(client, tokens.admin)
    r = client.put(
        f"{API}/plants/fd002/aliases/turbofan-rul/challenger",
        json={"version_id": reg["v2"]["id"]},
        headers=auth(tokens.admin),
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_input"


def test_unknown_alias_name_is_422(client: TestClient, tokens: Tokens) -> None:
    r = client.get(
        f"{API}/plants/fd001/aliases/turbofan-rul/production", headers=auth(tokens.admin)
    )
    assert r.status_code == 422


def test_plants_enrollment_is_idempotent_but_conflicts_on_change(
    client: TestClient, tokens: Tokens
) -> None:
    h = auth(tokens.admin)
    body = {
        "id": "ai4i-l",
        "name": "AI4I L",
        "site": "Mill",
        "lines": ["L"],
        "hardware_profile": {"cpu": "i5", "cores": 4},
    }
    first = client.post(f"{API}/plants", json=body, headers=h)
    again = client.post(f"{API}/plants", json=body, headers=h)
    changed = client.post(f"{API}/plants", json={**body, "site": "Other"}, headers=h)
    patched = client.patch(f"{API}/plants/ai4i-l", json={"site": "Other"}, headers=h)

    assert first.status_code == 201 and again.status_code == 201
    assert first.json() == again.json()
    assert changed.status_code == 409 and changed.json()["code"] == "already_exists"
    assert patched.status_code == 200 and patched.json()["site"] == "Other"
    assert patched.json()["lines"] == ["L"]


def test_idempotency_key_replays_and_detects_mismatch(client: TestClient, tokens: Tokens) -> None:
    h = {**auth(tokens.admin), "Idempotency-Key": "k-1"}
    client.post(f"{API}/models", json={"name": "m"}, headers=auth(tokens.admin))
    first = client.post(f"{API}/versions", json={"model": "m", "version": "1"}, headers=h)
    replay = client.post(f"{API}/versions", json={"model": "m", "version": "1"}, headers=h)
    mismatch = client.post(f"{API}/versions", json={"model": "m", "version": "2"}, headers=h)

    assert first.status_code == 201 and replay.json()["id"] == first.json()["id"]
    assert mismatch.status_code == 422
    assert mismatch.json()["code"] == "idempotency_mismatch"


def test_artifact_round_trip(client: TestClient, tokens: Tokens, hub_settings: HubSettings) -> None:
    blob = b"\x00model\xff" * 100
    digest = hashlib.sha256(blob).hexdigest()
    h = auth(tokens.data_scientist)

    up = client.put(
        f"{API}/artifacts/sha256/{digest}",
        content=blob,
        headers={**h, "Content-Type": "application/x-onnx"},
    )
    again = client.put(f"{API}/artifacts/sha256/{digest}", content=blob, headers=h)
    down = client.get(f"{API}/artifacts/sha256/{digest}", headers=h)
    meta = client.get(f"{API}/artifacts/sha256/{digest}/metadata", headers=h)

    assert up.status_code == 201 and again.status_code == 201
    assert down.content == blob and down.headers["x-content-sha256"] == digest
    assert (
        meta.json()["size_bytes"] == len(blob) and meta.json()["media_type"] == "application/x-onnx"
    )
    stored = hub_settings.artifact_root / "sha256" / digest[:2] / digest[2:4] / digest
    assert stored.read_bytes() == blob
    assert list((hub_settings.artifact_root / ".staging").iterdir()) == []


def test_plant_downloads_only_assigned_artifacts(client: TestClient, tokens: Tokens) -> None:
    reg = _setup_registry(client, tokens.admin)
    other = b"other"
    other_digest = hashlib.sha256(other).hexdigest()
    client.put(f"{API}/artifacts/sha256/{other_digest}", content=other, headers=auth(tokens.admin))

    own = client.get(
        f"{API}/artifacts/sha256/{reg['digest']}", headers=auth(tokens.plant)
    )  # v2 is for fd001
    foreign = client.get(f"{API}/artifacts/sha256/{other_digest}", headers=auth(tokens.plant))

    assert own.status_code == 200
    assert foreign.status_code == 403 and foreign.json()["code"] == "forbidden"


# ---------------------------------------------------------------- bad input leaves no trace


def _bad_requests(
    tokens: Tokens, digest_of_existing: str
) -> list[tuple[str, str, dict[str, Any], int, str]]:
    big = b"x" * (64 * 1024 + 1)
    wrong = b"not the declared bytes"
    declared = hashlib.sha256(b"something else").hexdigest()
    admin = auth(tokens.admin)
    return [
        (
            "malformed json",
            "POST",
            {
                "url": f"{API}/versions",
                "content": b"{not json",
                "headers": {**admin, "Content-Type": "application/json"},
            },
            422,
            "invalid_input",
        ),
        (
            "unknown plant",
            "POST",
            {
                "url": f"{API}/versions",
                "json": {"model": "turbofan-rul", "version": "9", "plant_id": "nope"},
                "headers": admin,
            },
            404,
            "not_found",
        ),
        (
            "unknown model",
            "POST",
            {"url": f"{API}/versions", "json": {"model": "nope", "version": "9"}, "headers": admin},
            404,
            "not_found",
        ),
        (
            "unknown parent",
            "POST",
            {
                "url": f"{API}/versions",
                "json": {"model": "turbofan-rul", "version": "9", "parent_id": 99999},
                "headers": admin,
            },
            404,
            "not_found",
        ),
        (
            "unknown version",
            "GET",
            {"url": f"{API}/versions/99999", "headers": admin},
            404,
            "not_found",
        ),
        (
            "unknown artifact",
            "POST",
            {
                "url": f"{API}/versions",
                "json": {"model": "turbofan-rul", "version": "9", "artifact_digest": declared},
                "headers": admin,
            },
            404,
            "not_found",
        ),
        (
            "duplicate version",
            "POST",
            {
                "url": f"{API}/versions",
                "json": {"model": "turbofan-rul", "version": "1.4", "code_version": "changed"},
                "headers": admin,
            },
            409,
            "already_exists",
        ),
        (
            "batch with one duplicate",
            "POST",
            {
                "url": f"{API}/versions/batch",
                "json": {
                    "versions": [
                        {"model": "turbofan-rul", "version": "7"},
                        {"model": "turbofan-rul", "version": "1.4"},
                    ]
                },
                "headers": admin,
            },
            409,
            "already_exists",
        ),
        (
            "sha mismatch",
            "PUT",
            {"url": f"{API}/artifacts/sha256/{declared}", "content": wrong, "headers": admin},
            422,
            "integrity_mismatch",
        ),
        (
            "oversized upload",
            "PUT",
            {
                "url": f"{API}/artifacts/sha256/{hashlib.sha256(big).hexdigest()}",
                "content": big,
                "headers": admin,
            },
            413,
            "payload_too_large",
        ),
        (
            "oversized streamed upload",
            "PUT",
            {
                "url": f"{API}/artifacts/sha256/{hashlib.sha256(big).hexdigest()}",
                "content": iter([big[:40000], big[40000:]]),
                "headers": admin,
            },
            413,
            "payload_too_large",
        ),
        (
            "wrong role",
            "POST",
            {
                "url": f"{API}/versions",
                "json": {"model": "turbofan-rul", "version": "9"},
                "headers": auth(tokens.executive),
            },
            403,
            "forbidden",
        ),
        (
            "plant writes registry",
            "PUT",
            {
                "url": f"{API}/artifacts/sha256/{declared}",
                "content": b"something else",
                "headers": auth(tokens.plant),
            },
            403,
            "forbidden",
        ),
        (
            "no token",
            "POST",
            {"url": f"{API}/plants", "json": {"id": "x", "name": "x"}},
            401,
            "unauthenticated",
        ),
        (
            "bad token",
            "POST",
            {"url": f"{API}/plants", "json": {"id": "x", "name": "x"}, "headers": auth("mw_nope")},
            401,
            "unauthenticated",
        ),
        (
            "invalid field",
            "POST",
            {"url": f"{API}/plants", "json": {"id": "bad id!", "name": "x"}, "headers": admin},
            422,
            "invalid_input",
        ),
        (
            "unknown field",
            "POST",
            {
                "url": f"{API}/plants",
                "json": {"id": "x", "name": "x", "colour": "red"},
                "headers": admin,
            },
            422,
            "invalid_input",
        ),
        (
            "unknown recipe",
            "POST",
            {
                "url": f"{API}/versions",
                "json": {"model": "turbofan-rul", "version": "9", "recipe_id": 99999},
                "headers": admin,
            },
            404,
            "not_found",
        ),
    ]


BAD_CASES = [c[0] for c in _bad_requests(Tokens("a", "b", "c", "d"), "")]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_4xx_and_changes_nothing(
    case: str, client: TestClient, tokens: Tokens, hub_settings: HubSettings
) -> None:
    # Prepare
    reg = _setup_registry(client, tokens.admin)
    name, method, kwargs, status, code = next(
        c for c in _bad_requests(tokens, reg["digest"]) if c[0] == case
    )
    before = snapshot(hub_settings)

    # Execute
    response = client.request(method, **kwargs)

    # Assert
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status and body["title"] and body["detail"]
    assert snapshot(hub_settings) == before


def test_lost_blob_is_a_clear_503_and_a_re_upload_heals_it(
    client: TestClient, tokens: Tokens, hub_settings: HubSettings
) -> None:
    blob = b"weights" * 50
    digest = hashlib.sha256(blob).hexdigest()
    h = auth(tokens.data_scientist)
    put = client.put(f"{API}/artifacts/sha256/{digest}", content=blob, headers=h)
    assert put.status_code == 201
    stored = hub_settings.artifact_root / "sha256" / digest[:2] / digest[2:4] / digest

    stored.write_bytes(blob[:10])  # truncated on disk
    truncated = client.get(f"{API}/artifacts/sha256/{digest}", headers=h)
    stored.unlink()  # gone from disk
    missing = client.get(f"{API}/artifacts/sha256/{digest}", headers=h)

    for response in (truncated, missing):
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "unavailable"
        assert digest in response.json()["detail"]
    assert "10 bytes, registered 350" in truncated.json()["detail"]
    assert "missing" in missing.json()["detail"]

    healed = client.put(f"{API}/artifacts/sha256/{digest}", content=blob, headers=h)
    assert healed.status_code == 201
    assert client.get(f"{API}/artifacts/sha256/{digest}", headers=h).content == blob
    assert list((hub_settings.artifact_root / ".staging").iterdir()) == []


def test_idempotency_key_expires_after_its_ttl(
    client: TestClient, tokens: Tokens, app: Any
) -> None:
    import datetime as dt

    from sqlalchemy import update

    from hub.idempotency.models import IdempotencyRecord
    from hub.idempotency.service import purge_expired

    h = {**auth(tokens.admin), "Idempotency-Key": "k-old"}
    client.post(f"{API}/models", json={"name": "m"}, headers=auth(tokens.admin))
    first = client.post(f"{API}/versions", json={"model": "m", "version": "1"}, headers=h)
    assert first.status_code == 201
    with app.state.session_factory() as session:  # age the key past the 24 h default
        session.execute(
            update(IdempotencyRecord).values(
                created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)
            )
        )
        session.commit()

    reused = client.post(f"{API}/versions", json={"model": "m", "version": "2"}, headers=h)
    replay = client.post(f"{API}/versions", json={"model": "m", "version": "2"}, headers=h)

    assert reused.status_code == 201 and reused.json()["version"] == "2"
    assert replay.json()["id"] == reused.json()["id"]  # the renewed key replays again
    with app.state.session_factory() as session:
        assert purge_expired(session=session, ttl=dt.timedelta(hours=1)) == 0
        assert purge_expired(session=session, ttl=dt.timedelta(0)) == 1
        assert session.query(IdempotencyRecord).count() == 0
