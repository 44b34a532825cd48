"""Tokens: minted by the CLI or an admin, stored only as hashes, revocable."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from hub.auth.models import ApiToken
from hub.cli import app as hub_cli
from hub.config import HubSettings
from tests.hub.fixtures import Tokens, auth


def test_cli_create_token_stores_only_the_hash(
    hub_settings: HubSettings, app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILLWRIGHT_HUB_DATABASE_URL", hub_settings.database_url)
    result = CliRunner().invoke(
        hub_cli, ["create-token", "--role", "admin", "--name", "ops", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)

    with app.state.session_factory() as session:
        rows = list(session.scalars(select(ApiToken)))
    assert all(created["token"] not in (r.token_hash, r.prefix) for r in rows)
    who = client.get("/api/v1/whoami", headers=auth(created["token"])).json()
    assert who["role"] == "admin" and who["name"] == "ops"


def test_cli_plant_token_needs_an_enrolled_plant(
    hub_settings: HubSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILLWRIGHT_HUB_DATABASE_URL", hub_settings.database_url)
    missing_plant = CliRunner().invoke(hub_cli, ["create-token", "--role", "plant"])
    unknown_plant = CliRunner().invoke(
        hub_cli, ["create-token", "--role", "plant", "--plant", "zz"]
    )
    assert missing_plant.exit_code != 0
    assert unknown_plant.exit_code == 1 and "not enrolled" in unknown_plant.output


def test_revoked_token_stops_working(client: TestClient, tokens: Tokens) -> None:
    h = auth(tokens.admin)
    minted = client.post(
        "/api/v1/tokens", json={"role": "executive", "name": "cfo"}, headers=h
    ).json()
    assert client.get("/api/v1/whoami", headers=auth(minted["token"])).status_code == 200
    listed = client.get("/api/v1/tokens", headers=h).json()["items"]
    assert all("token" not in t for t in listed)

    client.delete(f"/api/v1/tokens/{minted['id']}", headers=h)

    r = client.get("/api/v1/whoami", headers=auth(minted["token"]))
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    assert r.headers["www-authenticate"] == "Bearer"


def test_plant_token_must_name_a_plant(client: TestClient, tokens: Tokens) -> None:
    r = client.post("/api/v1/tokens", json={"role": "plant"}, headers=auth(tokens.admin))
    assert r.status_code == 422


def test_cli_lists_and_revokes_tokens(
    hub_settings: HubSettings, app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILLWRIGHT_HUB_DATABASE_URL", hub_settings.database_url)
    runner = CliRunner()
    created = json.loads(
        runner.invoke(
            hub_cli, ["create-token", "--role", "executive", "--name", "cfo", "--format", "json"]
        ).output
    )
    listed = runner.invoke(hub_cli, ["list-tokens", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [r["name"] for r in rows if r["id"] == created["id"]] == ["cfo"]
    assert all("token" not in r and created["token"] not in json.dumps(r) for r in rows)

    revoked = runner.invoke(hub_cli, ["revoke-token", str(created["id"])])
    unknown = runner.invoke(hub_cli, ["revoke-token", "999999"])

    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert unknown.exit_code == 1 and "does not exist" in unknown.output
    table = runner.invoke(hub_cli, ["list-tokens"]).output
    assert f"{created['id']:>5}" in table and "revoked" in table
    app.state.principal_cache.clear()  # the CLI is another process: the hub's memo expires
    r = client.get("/api/v1/whoami", headers=auth(created["token"]))
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"


def test_a_blank_token_name_mints_a_token_not_a_500(client: TestClient, tokens: Tokens) -> None:
    # found by the hub fuzzer: name "  " reached the service user's printed name as ""
    r = client.post(
        "/api/v1/tokens", json={"role": "executive", "name": "  "}, headers=auth(tokens.admin)
    )
    assert r.status_code == 201, r.text
    assert client.get("/api/v1/whoami", headers=auth(r.json()["token"])).status_code == 200
