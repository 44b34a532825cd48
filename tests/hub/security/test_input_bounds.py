"""Hub input bounds (issue 18, defects 5, 7, 8, 9): bad input is a 4xx problem, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.config import HubSettings
from hub.main import create_app
from tests.hub import factories
from tests.hub.fixtures import Tokens, auth, snapshot

API = "/api/v1"
BIG = 2**63  # one past a signed 64-bit integer (SQLite's OverflowError)
MAX = 2**31 - 1  # every id column is INTEGER: 32 bits on PostgreSQL


def _problem(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, (r.request.method, r.request.url, r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code


# Every route taking an integer id, in the path, the query or the body.
ID_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/versions/{id}", None),
    ("GET", "/versions/{id}/diff/1", None),
    ("GET", "/versions/1/diff/{id}", None),
    ("PUT", "/versions/{id}/tags/stage", {"value": "x"}),
    ("DELETE", "/versions/{id}/tags/stage", None),
    ("GET", "/versions?recipe_id={id}", None),
    ("GET", "/versions?parent_id={id}", None),
    ("POST", "/versions", {"model": "turbofan-rul", "version": "9", "parent_id": "{id}"}),
    ("POST", "/versions", {"model": "turbofan-rul", "version": "9", "recipe_id": "{id}"}),
    ("DELETE", "/tokens/{id}", None),
    ("GET", "/recipes/{id}", None),
    ("PATCH", "/recipes/{id}", {"description": "x"}),
    ("POST", "/recipes/{id}/publish", None),
    ("POST", "/recipes", {"name": "big", "version": "{id}"}),
    ("GET", "/campaigns/{id}", None),
    ("POST", "/campaigns/{id}/cancel", None),
    ("PUT", "/plants/fd001/aliases/turbofan-rul/champion", {"version_id": "{id}"}),
]


def _call(client: TestClient, token: str, method: str, path: str, body: Any, value: int) -> Any:
    url = API + path.replace("{id}", str(value))
    payload = None
    if body is not None:
        payload = json.loads(json.dumps(body).replace('"{id}"', str(value)))
    return client.request(method, url, json=payload, headers=auth(token))


def test_integer_ids_beyond_64_bits_or_below_one_are_422_on_every_route(
    client: TestClient, tokens: Tokens
) -> None:
    # Before: six routes answered 500 on an id above 2**63-1 on SQLite, and every id route
    # above 2**31-1 on PostgreSQL (the driver overflowed).
    for method, path, body in ID_ROUTES:
        for value in (BIG, MAX + 1, 0, -1):
            _problem(_call(client, tokens.admin, method, path, body, value), 422, "invalid_input")
        # The largest valid id passes validation: the row simply does not exist.
        r = _call(client, tokens.admin, method, path, body, MAX)
        assert r.status_code in (200, 201, 404, 409), (method, path, r.status_code, r.text)


def _raw(client: TestClient, token: str, method: str, path: str, text: str) -> Any:
    headers = {**auth(token), "Content-Type": "application/json"}
    return client.request(method, API + path, content=text.encode(), headers=headers)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_where_they_would_be_stored(
    client: TestClient, app: Any, tokens: Tokens, literal: str, hub_settings: HubSettings
) -> None:
    # Before: accepted and stored as null, so GET /versions and /recipes broke their schema.
    with app.state.session_factory() as session:
        factories.model(session)
    before = snapshot(hub_settings)
    cases = [
        ("/versions", f'{{"model":"turbofan-rul","version":"2","metrics":{{"rmse":{literal}}}}}'),
        (
            "/recipes",
            f'{{"name":"r","gates":[{{"metric":"rmse","op":"<=","threshold":{literal}}}]}}',
        ),
        ("/recipes", f'{{"name":"r","hyperparameters":{{"lr":{literal}}}}}'),
        ("/plants", f'{{"id":"p9","name":"n","hardware_profile":{{"memory_gb":{literal}}}}}'),
    ]
    for path, text in cases:
        _problem(_raw(client, tokens.admin, "POST", path, text), 422, "invalid_input")
    assert snapshot(hub_settings) == before
    assert client.get(f"{API}/versions", headers=auth(tokens.admin)).status_code == 200


def test_nul_and_control_characters_are_refused_in_names(
    client: TestClient, tokens: Tokens, hub_settings: HubSettings
) -> None:
    # Before: a NUL in a plant name was stored (SQLite) or crashed the driver (PostgreSQL).
    before = snapshot(hub_settings)
    h = auth(tokens.admin)
    bodies = [
        ("/plants", {"id": "p9", "name": "bad\x00name"}),
        ("/plants", {"id": "p9", "name": "bad\nname"}),
        ("/plants", {"id": "p9", "name": "ok", "site": "s\x1b[31m"}),
        ("/tokens", {"role": "admin", "name": "ops\x00"}),
        ("/models", {"name": "m", "task": "t\x00"}),
        ("/recipes", {"name": "r", "description": "a\x00b"}),
        ("/recipes", {"name": "r", "hyperparameters": {"k\x00": 1}}),
        (
            "/plants/fd001/events",
            {"events": [{"id": "e", "kind": "k\x07", "occurred_at": "2026-01-01T00:00:00Z"}]},
        ),  # noqa: E501
        (
            "/plants/fd001/events",
            {
                "events": [
                    {
                        "id": "e",
                        "kind": "k",
                        "occurred_at": "2026-01-01T00:00:00Z",
                        "payload": {"a": "\x00"},
                    }
                ]
            },
        ),  # noqa: E501
    ]
    for path, payload in bodies:
        _problem(client.post(API + path, json=payload, headers=h), 422, "invalid_input")
    _problem(
        client.patch(f"{API}/plants/fd001", json={"name": "x\x00"}, headers=h), 422, "invalid_input"
    )  # noqa: E501
    for url in ("/plants/fd%00x", "/versions?model=a%00b", "/plants/fd001/events?kind=%00"):
        _problem(client.get(API + url, headers=h), 422, "invalid_input")
    assert snapshot(hub_settings) == before
    # free text keeps its line breaks
    ok = client.post(
        f"{API}/recipes", json={"name": "r", "description": "line 1\nline 2\ttab"}, headers=h
    )
    assert ok.status_code == 201, ok.text


# --- body limits -----------------------------------------------------------------------


@pytest.fixture
def limited(hub_settings: HubSettings) -> Iterator[tuple[TestClient, HubSettings]]:
    settings = hub_settings.model_copy(
        update={"max_body_bytes": 4096, "max_recipe_body_bytes": 2048}
    )
    with TestClient(create_app(settings)) as c:
        yield c, settings


def test_a_10_mb_recipe_is_refused_413_before_it_is_read(
    limited: tuple[TestClient, HubSettings], tokens: Tokens
) -> None:
    # Before: the hub stored and re-served a 10 MB recipe.
    client, settings = limited
    from federation.schemas.auth import Role, TokenCreate
    from hub.auth import service as auth_service

    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        admin = auth_service.create_token(
            session=session, token_in=TokenCreate(role=Role.ADMIN), actor="t"
        ).token
    big = {"name": "huge", "description": "x", "hyperparameters": {"blob": "a" * 10_000_000}}
    r = client.post(f"{API}/recipes", json=big, headers=auth(admin))
    _problem(r, 413, "payload_too_large")
    assert "MILLWRIGHT_HUB_MAX_RECIPE_BODY_BYTES" in r.json()["detail"]

    # streamed without Content-Length: stopped at the limit, not buffered
    def chunks() -> Iterator[bytes]:
        yield b'{"name":"huge","hyperparameters":{"blob":"'
        for _ in range(100):
            yield b"a" * 100_000
        yield b'"}}'

    streamed = client.post(
        f"{API}/recipes",
        content=chunks(),
        headers={**auth(admin), "Content-Type": "application/json"},
    )
    _problem(streamed, 413, "payload_too_large")
    # other routes have their own (default) limit
    _problem(
        client.post(f"{API}/plants", json={"id": "p", "name": "n" * 5000}, headers=auth(admin)),
        413,
        "payload_too_large",
    )
    listed = client.get(f"{API}/recipes", headers=auth(admin)).json()
    assert listed["items"] == []


def test_the_schema_caps_a_recipe_even_under_a_generous_body_limit(
    client: TestClient, tokens: Tokens
) -> None:
    from federation.schemas.recipes import MAX_RECIPE_BYTES

    big = {"name": "huge", "architecture": {"blob": "a" * MAX_RECIPE_BYTES}}
    _problem(
        client.post(f"{API}/recipes", json=big, headers=auth(tokens.admin)), 422, "invalid_input"
    )  # noqa: E501
