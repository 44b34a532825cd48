"""Users own tokens and hold signing secrets; revocation is immediate; the spec needs a token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from federation.errors import Conflict, ErrorCode, NotFound
from federation.hub_client import HubClient
from federation.schemas.auth import Role, UserCreate
from hub.auth import service as auth_service
from hub.auth.models import ApiToken, User
from hub.cli import app as hub_cli
from hub.config import HubSettings
from hub.main import create_app
from tests.hub.fixtures import Tokens, auth


def test_admin_creates_and_lists_users_and_tokens_belong_to_them(
    admin_hub: HubClient, client: TestClient, tokens: Tokens
) -> None:
    # Execute
    ada = admin_hub.create_user(
        UserCreate(username="ada", printed_name="Ada Lovelace", role=Role.DATA_SCIENTIST)
    )
    minted = admin_hub.create_token(Role.DATA_SCIENTIST, name="ada laptop", username="ada")
    who = client.get("/api/v1/whoami", headers=auth(minted.token)).json()
    users = admin_hub.list_users().items

    # Assert
    assert who["user_id"] == ada.id and who["username"] == "ada"
    assert who["printed_name"] == "Ada Lovelace"
    assert minted.user_id == ada.id
    assert [u.username for u in users if u.username == "ada"] == ["ada"]
    assert not ada.has_signing_secret
    # Tokens minted without a user get a service user of their own, named after them.
    fixture_users = {u.username for u in users} - {"ada"}
    assert len(fixture_users) == len(Role) and all(u.startswith("token-") for u in fixture_users)


def test_bad_user_input(admin_hub: HubClient, client: TestClient, tokens: Tokens) -> None:
    h = auth(tokens.admin)
    admin_hub.create_user(UserCreate(username="bob", printed_name="Bob", role=Role.EXECUTIVE))
    dup = client.post(
        "/api/v1/users", json={"username": "bob", "printed_name": "B", "role": "admin"}, headers=h
    )
    plantless = client.post(
        "/api/v1/users", json={"username": "p", "printed_name": "P", "role": "plant"}, headers=h
    )
    nul = client.post(
        "/api/v1/users", json={"username": "c", "printed_name": "C\x00", "role": "admin"}, headers=h
    )
    wrong_role = client.post("/api/v1/tokens", json={"role": "admin", "username": "bob"}, headers=h)
    assert dup.status_code == 409 and dup.json()["code"] == "already_exists"
    assert plantless.status_code == 422 and nul.status_code == 422
    assert wrong_role.status_code == 422 and "role 'executive'" in wrong_role.json()["detail"]


def test_signing_secret_is_argon2_hashed_and_verified(
    app: FastAPI, client: TestClient, tokens: Tokens
) -> None:
    with app.state.session_factory() as session:
        user = auth_service.create_user(
            session=session,
            user_in=UserCreate(username="eve", printed_name="Eve", role=Role.ADMIN),
            actor="test",
        )
        assert not auth_service.verify_signing_secret(
            session=session, user_id=user.id, secret="whatever-secret"
        )
        auth_service.set_signing_secret(session=session, user_id=user.id, secret="correct horse")
        stored = session.scalars(select(User.signing_secret_hash).where(User.id == user.id)).one()
        ok = auth_service.verify_signing_secret(
            session=session, user_id=user.id, secret="correct horse"
        )
        wrong = auth_service.verify_signing_secret(
            session=session, user_id=user.id, secret="correct horsE"
        )
        unknown = auth_service.verify_signing_secret(
            session=session, user_id=10**6, secret="correct horse"
        )
    assert stored is not None and stored.startswith("$argon2id$") and "horse" not in stored
    assert ok and not wrong and not unknown


def test_cli_users_secrets_and_tokens(
    hub_settings: HubSettings, app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILLWRIGHT_HUB_DATABASE_URL", hub_settings.database_url)
    runner = CliRunner()
    made = runner.invoke(
        hub_cli,
        [
            "create-user",
            "--username",
            "grace",
            "--name",
            "Grace Hopper",
            "--role",
            "admin",
            "--format",
            "json",
        ],
    )
    secret = runner.invoke(
        hub_cli,
        ["set-signing-secret", "--username", "grace", "--secret-stdin"],
        input="s3cret-enough\n",
    )
    short = runner.invoke(
        hub_cli, ["set-signing-secret", "--username", "grace", "--secret-stdin"], input="short\n"
    )
    token = runner.invoke(
        hub_cli,
        ["create-token", "--role", "admin", "--name", "g", "--user", "grace", "--format", "json"],
    )
    assert made.exit_code == 0, made.output
    assert secret.exit_code == 0, secret.output
    assert short.exit_code == 1 and "8 to 1024" in short.output
    assert token.exit_code == 0, token.output
    user_id = json.loads(made.output)["id"]
    assert json.loads(token.output)["user_id"] == user_id
    with app.state.session_factory() as session:
        assert auth_service.verify_signing_secret(
            session=session, user_id=user_id, secret="s3cret-enough"
        )
    listed = json.loads(runner.invoke(hub_cli, ["list-users", "--format", "json"]).output)
    assert [u["has_signing_secret"] for u in listed if u["username"] == "grace"] == [True]


def test_last_admin_token_cannot_be_revoked(
    app: FastAPI, client: TestClient, tokens: Tokens
) -> None:
    # Prepare: the fixture has exactly one admin token.
    h = auth(tokens.admin)
    me = client.get("/api/v1/whoami", headers=h).json()

    # Execute
    refused = client.delete(f"/api/v1/tokens/{me['token_id']}", headers=h)
    with app.state.session_factory() as session, pytest.raises(Conflict) as cli_path:
        auth_service.revoke_token(session=session, token_id=me["token_id"])
    second = client.post("/api/v1/tokens", json={"role": "admin"}, headers=h).json()
    allowed = client.delete(f"/api/v1/tokens/{me['token_id']}", headers=auth(second["token"]))

    # Assert
    assert refused.status_code == 409 and refused.json()["code"] == "last_admin_token"
    assert cli_path.value.code == ErrorCode.LAST_ADMIN_TOKEN
    assert allowed.status_code == 200
    assert client.get("/api/v1/whoami", headers=h).status_code == 401
    with app.state.session_factory() as session, pytest.raises(NotFound):
        auth_service.revoke_token(session=session, token_id=10**6)


def test_cli_revocation_applies_to_the_next_request(
    hub_settings: HubSettings,
    app: FastAPI,
    client: TestClient,
    tokens: Tokens,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: the token is in use (a cache, if any, would now hold it).
    h = auth(tokens.executive)
    assert client.get("/api/v1/whoami", headers=h).status_code == 200
    with app.state.session_factory() as session:
        token_id = session.scalars(select(ApiToken.id).where(ApiToken.role == "executive")).one()

    # Execute: revoke from another process's code path (the CLI, straight in the database).
    monkeypatch.setenv("MILLWRIGHT_HUB_DATABASE_URL", hub_settings.database_url)
    revoked = CliRunner().invoke(hub_cli, ["revoke-token", str(token_id)])

    # Assert
    assert revoked.exit_code == 0 and "next request" in revoked.output
    assert client.get("/api/v1/whoami", headers=h).status_code == 401


def test_openapi_needs_a_token_and_docs_are_off(client: TestClient, tokens: Tokens) -> None:
    anonymous = client.get("/openapi.json")
    with_token = client.get("/openapi.json", headers=auth(tokens.plant))
    docs = client.get("/docs", headers=auth(tokens.admin))
    assert anonymous.status_code == 401
    assert with_token.status_code == 200 and "/api/v1/users" in with_token.json()["paths"]
    assert docs.status_code == 404


def test_public_docs_only_when_configured(tmp_path: Path) -> None:
    settings = HubSettings(
        database_url=f"sqlite:///{tmp_path / 'hub.db'}", artifact_root=tmp_path, public_docs=True
    )
    public = create_app(settings)
    with TestClient(public) as open_client:
        # The page only (building the whole spec is what the token test already checks).
        assert open_client.get("/docs").status_code == 200
    assert public.openapi_url == "/openapi.json"
