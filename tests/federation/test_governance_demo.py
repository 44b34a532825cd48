"""The demo's governance steps, run against an in-process hub (the demo itself is too slow)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from rich.console import Console

from federation.demo.context import PROJECT_ROOT, DemoContext
from federation.demo.governance_steps import (
    FIRST_CHAMPION_POLICY,
    govern_promotions,
    promote_automatically,
    publish_policies,
)
from federation.hub_client import HubClient
from federation.schemas.campaigns import CampaignRead
from federation.schemas.governance import LifecycleState, PromotionStatus
from federation.schemas.registry import AliasName
from hub.config import HubSettings
from tests.hub.fixtures import Tokens, auth
from tests.hub.governance.conftest import BLOB, DIGEST

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def test_governance_demo_steps(
    app: FastAPI,
    client: TestClient,
    admin_hub: HubClient,
    tokens: Tokens,
    hub_settings: HubSettings,
    tmp_path: Path,
) -> None:
    # Prepare: a published baseline with its artifact (no INT8 export, so the default gate
    # refuses it), and a demo context whose CLI calls reach this test's database.
    from tests.hub import factories

    client.put(f"/api/v1/artifacts/sha256/{DIGEST}", content=BLOB, headers=auth(tokens.admin))
    with app.state.session_factory() as session:
        factories.model(session)
        recipe = factories.recipe(session)
        version = factories.version(session, label="3.0", recipe_id=recipe.id,
                                    artifact_digest=DIGEST, metrics={"rmse": 14.0})
    out = io.StringIO()
    ctx = DemoContext(workdir=tmp_path, console=Console(file=out, width=200))
    ctx.env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "MILLWRIGHT_HUB_DATABASE_URL": hub_settings.database_url,
        "MILLWRIGHT_HUB_ARTIFACT_ROOT": str(hub_settings.artifact_root),
    }
    ctx.hub = admin_hub
    ctx.campaign = cast(CampaignRead, SimpleNamespace(version_id=version.id))  # what it reads

    # Execute
    publish_policies(ctx)
    first = promote_automatically(ctx, version.id, "fd001", FIRST_CHAMPION_POLICY)
    govern_promotions(ctx)

    # Assert
    text = out.getvalue()
    assert first.status == PromotionStatus.APPROVED and first.signatures == []
    assert admin_hub.get_alias("fd001", "turbofan-rul", AliasName.CHAMPION).id == version.id
    assert "promotion refused by the gate: promotion refused" in text
    assert "int8.parity_ok" in text
    assert "requester approving own request refused: four_eyes" in text
    assert "approved with e-signature by Quinn Quality" in text
    assert admin_hub.get_alias("fd002", "turbofan-rul", AliasName.SHADOW).id == version.id
    states = {i.version_id: i.state for i in admin_hub.plant_lifecycle("fd002").items}
    assert states == {version.id: LifecycleState.SHADOW}
