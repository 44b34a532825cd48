"""Governance fixtures: a gated version with a real artifact, a policy, and signing users."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.hub_client import HubClient
from federation.schemas.auth import Role, TokenCreate, UserCreate
from hub.auth import service as auth_service
from tests.hub import factories
from tests.hub.fixtures import Tokens, auth

BLOB = b"governed-model-bytes"
DIGEST = hashlib.sha256(BLOB).hexdigest()
SECRET = "correct horse battery"

GATE_YAML = """
kind: promotion_gate
id: gate-test
version: 1
title: Test gate
description: RMSE bound, verified artifact, complete lineage; one approver.
rules:
  - name: max_rmse
    metric: validation.rmse
    op: "<="
    threshold: 20.0
  - name: artifact_verified
    metric: artifact.verified
    op: "=="
    threshold: true
  - name: lineage_complete
    metric: lineage.complete
    op: "=="
    threshold: true
approvals:
  required: {required}
  roles: [data_scientist, admin]
"""


def gate_yaml(*, version: int = 1, required: int = 1, threshold: float = 20.0) -> str:
    """The test gate, optionally as another version, approver count or RMSE bound."""
    return (
        GATE_YAML.replace("version: 1", f"version: {version}")
        .replace("{required}", str(required))
        .replace("threshold: 20.0", f"threshold: {threshold}")
    )


@dataclass
class Signer:
    """A person with a token and a signing secret."""

    user_id: int
    username: str
    printed_name: str
    token: str
    hub: HubClient


@dataclass
class Governed:
    """What the governance tests act on; signers are made on first use (argon2 is slow)."""

    good: int  # version id that passes the gate
    bad: int  # version id whose RMSE fails it
    admin: HubClient
    app: FastAPI
    client: TestClient

    @cached_property
    def requester(self) -> Signer:
        return _signer(self.app, self.client, "dana", "Dana Data", Role.DATA_SCIENTIST)

    @cached_property
    def approver(self) -> Signer:
        return _signer(self.app, self.client, "quinn", "Quinn Quality", Role.ADMIN)

    @cached_property
    def second(self) -> Signer:
        return _signer(self.app, self.client, "sam", "Sam Second", Role.DATA_SCIENTIST)

    @cached_property
    def viewer(self) -> Signer:
        return _signer(self.app, self.client, "eve", "Eve Executive", Role.EXECUTIVE)


def _signer(app: FastAPI, client: TestClient, username: str, name: str, role: Role) -> Signer:
    with app.state.session_factory() as session:
        user = auth_service.create_user(
            session=session,
            user_in=UserCreate(username=username, printed_name=name, role=role),
            actor="test",
        )
        auth_service.set_signing_secret(session=session, user_id=user.id, secret=SECRET)
        token = auth_service.create_token(
            session=session, token_in=TokenCreate(role=role, username=username), actor="test"
        ).token
    return Signer(user.id, username, name, token, HubClient(client=client, token=token, retries=0))


@pytest.fixture
def governed(app: FastAPI, client: TestClient, tokens: Tokens) -> Governed:
    admin = HubClient(client=client, token=tokens.admin, retries=0)
    assert (
        client.put(f"/api/v1/artifacts/sha256/{DIGEST}", content=BLOB, headers=auth(tokens.admin))
    ).status_code == 201
    with app.state.session_factory() as session:
        factories.model(session)
        recipe = factories.recipe(session)
        common: dict[str, Any] = {"recipe_id": recipe.id, "artifact_digest": DIGEST}
        good = factories.version(session, label="2.0", metrics={"rmse": 14.2}, **common)
        bad = factories.version(session, label="2.1", metrics={"rmse": 25.9}, **common)
    admin.publish_policy(gate_yaml())
    return Governed(good=good.id, bad=bad.id, admin=admin, app=app, client=client)
