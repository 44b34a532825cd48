"""Fixtures of the campaign tests: a registry a campaign can be posted against."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.hub import factories
from tests.hub.fixtures import Tokens, auth

API = "/api/v1"


@pytest.fixture
def reg(client: TestClient, app: FastAPI, tokens: Tokens) -> dict[str, Any]:
    """A cmapss model with an exported parent version, a published and a draft recipe."""
    blob = b"parent-export"
    digest = hashlib.sha256(blob).hexdigest()
    put = client.put(f"{API}/artifacts/sha256/{digest}", content=blob, headers=auth(tokens.admin))
    assert put.status_code == 201
    with app.state.session_factory() as session:
        factories.model(session)
        factories.model(session, "other-model")
        recipe = factories.recipe(
            session,
            hyperparameters={"lr": 0.001, "federation": {
                "allowed_strategies": ["fedavg", "fedprox", "fedmedian"]}},
        )
        draft = factories.recipe(session, "draft-recipe", publish=False)
        parent = factories.version(session, artifact_digest=digest, recipe_id=recipe.id)
        bare = factories.version(session, label="2.0")
        foreign = factories.version(session, "other-model", "1.0", artifact_digest=digest)
        return {"recipe": recipe.id, "draft": draft.id, "parent": parent.id, "bare": bare.id,
                "foreign": foreign.id}


def body(reg: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "model": "turbofan-rul", "parent_version_id": reg["parent"], "recipe_id": reg["recipe"],
        "plants": ["fd001", "fd002"], "strategy": "fedavg", "rounds": 2, "local_epochs": 1,
        "min_participants": 2,
    }
    doc.update(overrides)
    return doc
