"""The demo's hub runs over HTTPS with a certificate from the demo CA (building blocks only)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rich.console import Console

from federation.demo.context import DemoContext, stop_process
from federation.demo.hub_steps import prepare_environment, start_hub
from federation.hub_client import HubClient
from federation.schemas.auth import Role, TokenCreate
from hub.auth import service as auth_service
from hub.config import HubSettings
from hub.db import make_engine, make_session_factory


def test_start_hub_serves_https_and_every_client_pins_the_demo_ca(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: a migrated database (the migrate step is not under test here).
    db = tmp_path / "hub.db"
    shutil.copyfile(sqlite_template, db)
    monkeypatch.setenv("MILLWRIGHT_HUB_DATABASE_URL", f"sqlite:///{db}")
    engine = make_engine(HubSettings(database_url=f"sqlite:///{db}"))
    with make_session_factory(engine)() as session:
        token = auth_service.create_token(
            session=session, token_in=TokenCreate(role=Role.ADMIN), actor="t"
        ).token
    engine.dispose()
    ctx = DemoContext(workdir=tmp_path, console=Console(quiet=True))
    prepare_environment(ctx)

    # Execute
    start_hub(ctx)
    try:
        with HubClient(ctx.hub_url, token=token, ca_file=ctx.ca_file, retries=0) as hub:
            whoami = hub.whoami()
    finally:
        stop_process(ctx.hub_process)

    # Assert: https, and the nodes and CLI subprocesses are told which CA to pin.
    assert ctx.hub_url.startswith("https://127.0.0.1:")
    assert whoami.role == Role.ADMIN
    assert ctx.ca_file is not None
    assert ctx.env["MILLWRIGHT_NODE_HUB_CA_FILE"] == str(ctx.ca_file)
    assert ctx.env["SSL_CERT_FILE"] == str(ctx.ca_file)
