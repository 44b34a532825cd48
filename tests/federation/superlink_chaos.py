"""SIGKILL the SuperLink and the hub during a hub campaign, then bring both back.

Shared by ``tests/federation/test_deployment.py`` (one kill on the module's federation) and
``benchmarks/bench_reliability_chaos.py`` (``chaos.superlink_kills``, ``chaos.campaign_outcome``).
The hub is a real ``millwright hub serve`` process whose campaign worker drives the
campaign on the SuperLink; the SuperLink is killed with its SuperExec and ServerApp.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation.baselines_publish import Published, publish_export
from federation.flower.deployment import LocalFederation
from federation.flower.processes import free_port
from federation.flower.results import read_results
from federation.flower.runner import start_run
from federation.hub_client import HubClient
from federation.schemas.auth import Role, TokenCreate
from federation.schemas.campaigns import CampaignCreate, CampaignRead

REPO = Path(__file__).resolve().parents[2]
#: A toy-linear run of one round: what "the restarted SuperLink runs a new run" means.
SMALL_RUN: dict[str, Any] = {
    "baseline": "toy-linear", "strategy": "fedavg", "num-server-rounds": 1, "local-epochs": 1,
    "min-participants": 2, "round-timeout": 120.0, "node-wait-timeout": 10.0,
    "max-update-norm": 5.0,
}


class HubProcess:
    """``millwright hub serve`` with its campaign worker on ``federation``'s SuperLink.

    ``template`` is a migrated hub SQLite file; the plants and an admin token are written
    into a copy of it before the hub first starts.
    """

    def __init__(
        self, root: Path, federation: LocalFederation, template: Path, plants: Sequence[str]
    ) -> None:
        from hub.auth import service as auth_service
        from hub.config import HubSettings
        from hub.db import make_engine, make_session_factory
        from tests.hub import factories

        root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, root / "hub.db")
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MILLWRIGHT_HUB_")}
        self.env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            MILLWRIGHT_HUB_DATABASE_URL=f"sqlite:///{root / 'hub.db'}",
            MILLWRIGHT_HUB_ARTIFACT_ROOT=str(root / "artifacts"),
            MILLWRIGHT_HUB_PORT=str(self.port),
            MILLWRIGHT_HUB_ACCESS_LOG="false",
            MILLWRIGHT_HUB_CAMPAIGN_SUPERLINK=federation.settings.superlink_address,
            MILLWRIGHT_HUB_CAMPAIGN_SUPERLINK_ROOT_CERT=str(federation.root_certificate),
            MILLWRIGHT_HUB_CAMPAIGN_WORK_DIR=str(root / "campaigns"),
            MILLWRIGHT_HUB_CAMPAIGN_POLL_SECONDS="0.5",
        )
        engine = make_engine(HubSettings(database_url=self.env["MILLWRIGHT_HUB_DATABASE_URL"]))
        with make_session_factory(engine)() as session:
            for plant in plants:
                factories.plant(session, plant)
            self.token = auth_service.create_token(
                session=session, token_in=TokenCreate(role=Role.ADMIN), actor="chaos"
            ).token
        engine.dispose()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Serve and wait for ``/readyz``."""
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start ``hub serve`` (returns at once)."""
        with (self.root / "hub.log").open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
                [sys.executable, str(REPO / "millwright.py"), "hub", "serve"], env=self.env,
                cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until ``/readyz`` answers 200."""
        import httpx

        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.root / "hub.log").read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"hub not ready after {timeout}s")

    def client(self) -> HubClient:
        """A client with the admin token."""
        return HubClient(self.url, token=self.token, retries=0)

    def kill(self) -> None:
        """SIGKILL the hub (no shutdown hooks) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(15)
        self.proc = None

    def stop(self) -> None:
        """Terminate the hub politely."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None


def tiny_cmapss_export(root: Path) -> Path:
    """A tiny C-MAPSS FD001 model exported like a published baseline (FP32 only)."""
    from baselines.export.convert import export_baseline
    from baselines.models.pipeline import train_baseline
    from baselines.recipes import cmapss_recipe

    recipe = cmapss_recipe()
    recipe = recipe.model_copy(update={"hyperparameters": recipe.hyperparameters.model_copy(
        update={"epochs": 1, "overrides": {}})})
    trained = train_baseline("cmapss", "FD001", recipe=recipe, root=root / "models", max_units=4)
    export_baseline(trained, root / "export", int8=False, strict=False)
    return root / "export"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 0.2 s; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        time.sleep(0.2)


def wait_for_campaign(client: HubClient, campaign_id: int, timeout: float) -> CampaignRead:
    """Poll the campaign until it is final or ``timeout`` passed; return its last state."""
    deadline = time.monotonic() + timeout
    while True:
        campaign = client.get_campaign(campaign_id)
        if campaign.status.final or time.monotonic() > deadline:
            return campaign
        time.sleep(0.5)


@dataclass
class SuperLinkKill:
    """One campaign whose SuperLink and hub were SIGKILLed and restarted (both back up)."""

    campaign_id: int
    killed: dt.datetime
    clock: float
    new_run: tuple[int, Path]
    phases: dict[str, float] = field(default_factory=dict)


def kill_during_campaign(
    federation: LocalFederation, hub: HubProcess, parent: Published,
    rng: random.Random, *, plants: Sequence[str], name: str = "after-restart",
) -> SuperLinkKill:
    """Post a campaign, SIGKILL the SuperLink and the hub at seeded moments, restart both.

    The SuperLink dies 0.5-4 s after the ServerApp started round 1 (it writes its results
    document when it starts), the hub 0.2-2 s later; 0.5-3 s after that the hub is started
    again and the SuperLink restarted, and a new small run is started on it. Returns at
    once: Flower declares the killed ServerApp's run failed only when its heartbeat lapses
    (2 x 30 s in flwr 1.41), and the campaign ends on the hub's next poll after that.
    """
    with hub.client() as client:
        posted = client.create_campaign(CampaignCreate(
            model=parent.model, parent_version_id=parent.version_id,
            recipe_id=parent.recipe_id, plants=list(plants), strategy="fedavg", rounds=2,
            local_epochs=1, min_participants=2, personalize_epochs=0,
            round_timeout_seconds=60, max_samples_per_plant=300, max_units_per_plant=4,
        ))
    results = hub.root / "campaigns" / f"campaign-{posted.id}" / "results.json"
    wait_until(lambda: read_results(results) is not None, 180, "the ServerApp's start")
    time.sleep(rng.uniform(0.5, 4.0))
    killed, clock = dt.datetime.now(dt.UTC), time.monotonic()
    federation.kill_superlink()
    time.sleep(rng.uniform(0.2, 2.0))
    hub.kill()
    time.sleep(rng.uniform(0.5, 3.0))
    hub.spawn()
    federation.restart_superlink(timeout=60)
    phases = {"superlink_back": time.monotonic() - clock}
    path = federation.settings.var_dir / "runs" / f"{name}.json"
    run_id = start_run(federation.control, run_config=dict(SMALL_RUN), results_path=path,
                       node_plants=federation.node_plants)
    hub.wait_ready()
    phases["hub_back"] = time.monotonic() - clock
    return SuperLinkKill(posted.id, killed, clock, (run_id, path), phases)


def publish_parent(hub: HubProcess, export_dir: Path) -> Published:
    """Publish the parent export to the hub (the campaign starts from it)."""
    with hub.client() as client:
        return publish_export(client, export_dir)
