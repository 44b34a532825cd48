"""The hub client against the real hub app (TestClient injected): typed results, errors, paging."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from federation.errors import (
    Conflict,
    Forbidden,
    IntegrityMismatch,
    InvalidInput,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from federation.hub_client import HubClient
from federation.schemas.auth import Role
from federation.schemas.events import PlantEventCreate
from federation.schemas.recipes import RecipeCreate
from federation.schemas.registry import AliasName, BaselineModelCreate, PlantCreate, VersionCreate
from tests.hub.fixtures import Tokens


def test_registry_workflow(admin_hub: HubClient, plant_hub: HubClient, tmp_path: Path) -> None:
    # Prepare
    admin_hub.create_model(BaselineModelCreate(name="turbofan-rul", dataset="cmapss"))
    recipe = admin_hub.create_recipe(RecipeCreate(name="lstm", hyperparameters={"lr": 0.001}))
    admin_hub.publish_recipe(recipe.id)
    model_file = tmp_path / "model.onnx"
    model_file.write_bytes(b"\x01" * 5000)
    artifact = admin_hub.upload_artifact(model_file, media_type="application/x-onnx")
    base = admin_hub.create_version(
        VersionCreate(
            model="turbofan-rul",
            version="1.0",
            recipe_id=recipe.id,
            artifact_digest=artifact.digest,
        )
    )
    tuned = admin_hub.create_version(
        VersionCreate(
            model="turbofan-rul",
            version="1.1",
            plant_id="fd001",
            parent_id=base.id,
            metrics={"rmse": 15.0},
        )
    )

    # Execute
    admin_hub.set_alias("fd001", "turbofan-rul", AliasName.CHALLENGER, base.id)
    assignments = plant_hub.get_assignments("fd001")
    dest = tmp_path / "fetched.onnx"
    size = plant_hub.download_artifact(assignments.items[0].artifact_digest or "", dest)
    diff = admin_hub.diff_versions(base.id, tuned.id)

    # Assert
    assert artifact.digest == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert (
        assignments.items[0].alias == AliasName.CHALLENGER and assignments.items[0].version == "1.0"
    )
    assert size == 5000 and dest.read_bytes() == model_file.read_bytes()
    assert {c.field for c in diff.changes} >= {"version", "parent_id", "plant_id", "metrics.rmse"}
    assert plant_hub.get_alias("fd001", "turbofan-rul", AliasName.CHALLENGER).id == base.id


def test_iterators_follow_page_tokens(admin_hub: HubClient) -> None:
    for i in range(7):
        admin_hub.create_plant(PlantCreate(id=f"p{i}", name=f"P{i}"))
    admin_hub.create_model(BaselineModelCreate(name="m"))
    admin_hub.create_versions(
        [VersionCreate(model="m", version=str(i), tags={"k": "v"}) for i in range(9)]
    )

    plants = [p.id for p in admin_hub.iter_plants(page_size=2)]
    versions = [v.version for v in admin_hub.iter_versions(model="m", tag="k=v", page_size=4)]

    assert plants == sorted(["fd001", "fd002"] + [f"p{i}" for i in range(7)])
    assert versions == [str(i) for i in reversed(range(9))]


def test_errors_come_back_as_the_servers_classes(
    admin_hub: HubClient, plant_hub: HubClient, client: TestClient
) -> None:
    admin_hub.create_model(BaselineModelCreate(name="m"))
    admin_hub.create_version(VersionCreate(model="m", version="1"))

    with pytest.raises(NotFound) as not_found:
        admin_hub.get_version(4242)
    with pytest.raises(Conflict) as conflict:
        admin_hub.create_version(VersionCreate(model="m", version="1", code_version="other"))
    with pytest.raises(Forbidden):
        plant_hub.get_plant("fd002")
    with pytest.raises(Unauthenticated):
        HubClient(client=client, token="mw_wrong").whoami()
    with pytest.raises(InvalidInput):
        admin_hub.list_plants(page_token="garbage")

    assert not_found.value.code == "not_found"
    assert conflict.value.code == "already_exists"


def test_download_verifies_sha256(admin_hub: HubClient, tmp_path: Path) -> None:
    artifact = admin_hub.upload_artifact(b"good bytes")
    # Corrupt the stored blob behind the hub's back.
    store = admin_hub._client.app.state.artifact_store  # type: ignore[attr-defined]
    store.path_for(artifact.digest).write_bytes(b"bad bytes!")
    dest = tmp_path / "x.bin"
    with pytest.raises(IntegrityMismatch):
        admin_hub.download_artifact(artifact.digest, dest)
    assert not dest.exists()


def test_events_are_idempotent_through_the_client(plant_hub: HubClient) -> None:
    events = [
        PlantEventCreate(
            id=f"evt-{i}",
            kind="serving_stats",
            occurred_at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
            payload={"n": i},
        )
        for i in range(3)
    ]
    first = plant_hub.post_events("fd001", events)
    again = plant_hub.post_events("fd001", events)
    assert (
        first.accepted == 3
        and again.accepted == 0
        and again.duplicates == ["evt-0", "evt-1", "evt-2"]
    )
    assert [e.id for e in plant_hub.iter_events("fd001")] == ["evt-0", "evt-1", "evt-2"]


def test_token_admin_through_client(admin_hub: HubClient, client: TestClient) -> None:
    minted = admin_hub.create_token(Role.PLANT, plant_id="fd002", name="node-fd002")
    who = HubClient(client=client, token=minted.token).whoami()
    assert who.role == Role.PLANT and who.plant_id == "fd002"


class _FlakyTransport(httpx.BaseTransport):
    """Fails the first call with a connection error, then forwards to the real app."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers.get("Idempotency-Key"))
        if len(self.keys) == 1:
            raise httpx.ConnectError("connection reset")
        return self.inner.handle_request(request)


def test_retried_create_reuses_its_idempotency_key(client: TestClient, tokens: Tokens) -> None:
    flaky = _FlakyTransport(client._transport)
    with httpx.Client(transport=flaky, base_url="http://testserver") as http:
        hub = HubClient(client=http, token=tokens.admin, retries=2, backoff=0)
        created = hub.create_model(BaselineModelCreate(name="retried"))
    assert created.name == "retried"
    assert len(flaky.keys) == 2 and flaky.keys[0] == flaky.keys[1] and flaky.keys[0]


def test_unreachable_hub_raises_unavailable() -> None:
    with HubClient("http://127.0.0.1:1", token="x", retries=0) as hub, pytest.raises(Unavailable):
        hub.whoami()
