"""A small seeded fleet served by a real hub on a free port, and one Chromium per session."""

from __future__ import annotations

import datetime as dt
import random
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from federation.schemas.auth import Role, TokenCreate
from federation.schemas.events import PlantEventCreate
from federation.schemas.registry import PlantCreate
from hub import migrations
from hub.auth import service as auth_service
from hub.config import HubSettings
from hub.db import make_engine, make_session_factory
from hub.events import service as events_service
from hub.main import create_app
from hub.metrics import flows
from hub.metrics import service as metrics_service
from hub.registry import service as registry_service

CHROMIUM = Path("/usr/bin/chromium")
EVIL = "<script>alert(1)</script>"
EVIL_ALERT = "<img src=x onerror=alert(2)>"
COSTS = """
default:
  id: cost-default
  version: 1
  kind: cost
  title: Fleet default
  currency: EUR
  cost_per_unplanned_failure_hour: 10000
  hours_per_failure: 5
  cost_per_false_alarm: 700
  cost_per_planned_intervention: 2000
"""
#: The fleet's reports end at this midnight (UTC): pages are asked for the days before it.
END = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class Fleet:
    """The running hub, its settings, and one token per role (plant: plant-01)."""

    url: str
    settings: HubSettings
    tokens: dict[str, str]

    def api(self, role: str, path: str, **params: Any) -> Any:
        """GET an API path as ``role`` and return its JSON."""
        r = httpx.get(
            self.url + path,
            params=params,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
            timeout=10,
        )
        r.raise_for_status()
        return r.json()


def _seed(settings: HubSettings) -> dict[str, str]:
    factory = make_session_factory(make_engine(settings))
    flows.seed_history(session_factory=factory, plants=3, models=2, hours=24 * 4, end=END)
    with factory() as session:
        registry_service.create_plant(
            session=session,
            plant_in=PlantCreate(id="evil-1", name=EVIL, site=EVIL, lines=["line-evil"]),
            actor="test",
        )
        model = flows.FLEET_MODELS[0]
        rng = random.Random(7)
        start = END - dt.timedelta(hours=24)
        reports = [
            flows.hourly_report(
                plant_index=4,
                plant_id="evil-1",
                model=model,
                hour=h,
                start=start,
                switch_hour=100,
                rng=rng,
            )
            for h in range(24)
        ]
        metrics_service.ingest_reports(
            session=session, plant_id="evil-1", reports=reports, actor="test", max_batch=100
        )
        events_service.ingest_events(
            session=session,
            plant_id="plant-01",
            events_in=[
                PlantEventCreate(
                    id=f"fb-{i}",
                    kind="alert.fallback_rule",
                    occurred_at=END - dt.timedelta(hours=3 + i),
                    payload={"message": EVIL_ALERT},
                )
                for i in range(3)
            ],
            max_batch=100,
        )
        tokens = {
            role.value: auth_service.create_token(
                session=session,
                token_in=TokenCreate(
                    role=role,
                    plant_id="plant-01" if role == Role.PLANT else None,
                    name=f"ui-{role.value}",
                ),
                actor="test",
            ).token
            for role in Role
        }
    return tokens


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("ui-fleet")
    (root / "costs.yaml").write_text(COSTS)
    settings = HubSettings(
        database_url=f"sqlite:///{root / 'hub.db'}",
        artifact_root=root / "artifacts",
        cost_policy_file=root / "costs.yaml",
        access_log=False,
        log_level="WARNING",
    )
    migrations.upgrade(settings)
    tokens = _seed(settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the hub did not start"
    try:
        yield Fleet(url=f"http://127.0.0.1:{port}", settings=settings, tokens=tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.fail("Debian's Chromium (/usr/bin/chromium) is needed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        yield b
        b.close()
