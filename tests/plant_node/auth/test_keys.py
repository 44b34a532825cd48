"""Node keys: the CLI prints a key once and stores its hash; revocation applies at once."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from plant_node.auth import service as auth_service
from plant_node.auth.models import NodeKey
from plant_node.auth.schemas import BootstrapKey, NodeRole
from plant_node.cli import app as cli_app
from plant_node.config import NodeSettings
from plant_node.main import create_app
from tests.plant_node.keys import ENGINEER_KEY, auth


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(cli_app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_keys_are_hashed_and_revocation_is_immediate(node_settings: NodeSettings) -> None:
    where = ["--data-dir", str(node_settings.data_path), "--format", "json"]
    created = _cli("create-key", "--role", "line", "--name", "line-3", *where)
    with TestClient(create_app(node_settings)) as client:
        headers = {"Authorization": f"Bearer {created['key']}"}
        before = client.get("/v1/alerts", headers=headers)
        denied = client.post("/v1/models/reload", headers=headers)
        listed = _cli("list-keys", *where)
        revoked = _cli("revoke-key", str(created["id"]), *where)  # another "process": the CLI
        after = client.get("/v1/alerts", headers=headers)
        with client.app.state.node.session_factory() as session:  # type: ignore[attr-defined]
            hashes = list(session.scalars(select(NodeKey.key_hash)))

    assert created["key"].startswith("mwn_") and len(created["key"]) >= 40
    assert before.status_code == 200
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    mine = next(k for k in listed if k["id"] == created["id"])
    assert mine["role"] == "line" and "key" not in mine and mine["revoked_at"] is None
    assert revoked["revoked_at"] is not None
    assert after.status_code == 401
    assert after.headers["content-type"] == "application/problem+json"
    assert auth_service.hash_key(created["key"]) in hashes
    assert created["key"] not in hashes


def test_a_revoked_bootstrap_key_stays_revoked_after_restart(node_settings: NodeSettings) -> None:
    with TestClient(create_app(node_settings)) as client:
        with client.app.state.node.session_factory() as session:  # type: ignore[attr-defined]
            key_id = session.scalars(
                select(NodeKey.id).where(NodeKey.key_hash == auth_service.hash_key(ENGINEER_KEY))
            ).one()
            auth_service.revoke_key(session=session, key_id=key_id)
    with TestClient(create_app(node_settings)) as client:
        status = client.get("/v1/rollout", headers=auth()).status_code
    assert status == 401


def test_bootstrap_keys_refuse_short_secrets() -> None:
    try:
        BootstrapKey(role=NodeRole.LINE, name="x", key="short")
    except ValueError:
        return
    raise AssertionError("a 5-character key was accepted")


def test_key_verifier_caches_verified_keys_and_still_honours_revocation(
    node_settings: NodeSettings, monkeypatch: Any
) -> None:
    from federation.errors import Unauthenticated
    from plant_node.db import make_engine, make_session_factory, upgrade_database

    node_settings.ensure_dirs()
    upgrade_database(node_settings.db_url)
    engine = make_engine(node_settings.db_url)
    factory = make_session_factory(engine)
    with factory() as session:
        created = auth_service.create_key(session=session, role=NodeRole.LINE, name="line-9")
    verifier = auth_service.KeyVerifier(engine)
    try:
        first = verifier.authenticate(created.key)
        calls: list[str | None] = []
        real = auth_service.authenticate

        def counting(*, session: Any, key: str | None) -> Any:
            calls.append(key)
            return real(session=session, key=key)

        monkeypatch.setattr(auth_service, "authenticate", counting)
        again = [verifier.authenticate(created.key) for _ in range(5)]
        with factory() as session:  # another session, as the CLI would: revoke
            auth_service.revoke_key(session=session, key_id=created.id)
        refused = []
        for _ in range(2):
            try:
                verifier.authenticate(created.key)
            except Unauthenticated as exc:
                refused.append(exc.status)
        unknown_refused = 0
        for _ in range(2):
            try:
                verifier.authenticate("mwn_" + "y" * 43)
            except Unauthenticated:
                unknown_refused += 1
    finally:
        verifier.close()
        engine.dispose()

    assert first.name == "line-9" and first.role is NodeRole.LINE
    assert all(p == first for p in again)
    assert refused == [401, 401]  # revoked elsewhere: refused from the very next call
    assert unknown_refused == 2
    # Cached hits never opened a session; after the revocation the key left the cache (the
    # second refusal took the full path again), and unknown keys are never cached.
    assert calls == [created.key, "mwn_" + "y" * 43, "mwn_" + "y" * 43]
