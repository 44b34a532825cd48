"""Chaos between a plant node and a real hub: a flaky link, cuts, SIGKILLed hub and node.

Shared by ``tests/plant_node/outbox/test_chaos.py`` (chaos-lite: seconds) and the ``chaos``
figures of ``benchmarks/bench_reliability_chaos.py``. The node's outbox reaches the hub
through :class:`ChaosProxy`, a TCP relay that, per connection and from a seeded random
source, passes bytes, delays them, resets the connection mid-request, or lets the request
through and resets the connection when the answer comes back (the hub stored the report,
the node never hears it: the acknowledgement is lost). While it runs, reports and events
are written into the node's outbox, the link is cut for a while, and the hub (and, with a
node process, the node) is killed with SIGKILL and restarted. At the end the link heals and
what the hub stores is compared with what the node made: nothing lost, nothing twice.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation.hub_client import HubClient
from federation.schemas.registry import PlantCreate
from plant_node.db import make_engine, make_session_factory, managed_session, upgrade_database
from plant_node.outbox import service as outbox_service
from plant_node.outbox.deliverers import HubClientDeliverer
from plant_node.outbox.sender import OutboxSender
from plant_node.outbox.types import RetryPolicy
from tests.plant_node.outbox import procs
from tests.plant_node.outbox.offline import (
    Cadence,
    OfflineRun,
    exactly_once,
    hub_holdings,
    make_report,
)

MODES = ("pass", "delay", "reset_request", "reset_response")


def _reset(sock: socket.socket) -> None:
    """Drop a connection as a broken link or a crashed peer does (linger 0: an RST).

    The shutdown first wakes a relay thread blocked in ``recv`` on it, so the peer hears of
    it now rather than at its timeout.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class ChaosProxy:
    """A TCP relay in front of the hub that misbehaves per connection, from a seeded RNG.

    Parameters
    ----------
    upstream
        The hub's port on 127.0.0.1.
    seed
        Seed of the per-connection choices.
    weights
        Relative weights of :data:`MODES` while the link is flaky.
    """

    def __init__(self, upstream: int, seed: int, weights: tuple[float, ...] = (4, 2, 1, 1)) -> None:
        self.upstream = upstream
        self.rng = random.Random(seed)
        self.weights = weights
        self.flaky = False
        self.cut = False
        self.modes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def set_link(self, *, flaky: bool = False, cut: bool = False) -> None:
        """Change the link; a cut or a new flaky stretch resets every open connection."""
        with self._lock:
            self.flaky, self.cut = flaky, cut
            doomed = list(self._open) if (flaky or cut) else []
            self._open.clear()
        for sock in doomed:
            _reset(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                if self.cut:
                    mode = "cut"
                elif self.flaky:
                    mode = self.rng.choices(MODES, weights=self.weights)[0]
                else:
                    mode = "pass"
                delay = self.rng.uniform(0.05, 0.4)
                self.modes[mode] += 1
            if mode == "cut":
                _reset(client)
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=2)
                server.settimeout(None)
            except OSError:  # the hub is down: the node sees a reset
                _reset(client)
                continue
            with self._lock:
                self._open.add(client)
            args = (client, server, mode, delay)
            threading.Thread(target=self._up, args=args, daemon=True).start()
            threading.Thread(target=self._down, args=args, daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, mode: str, delay: float) -> None:
        try:
            while data := client.recv(65536):
                if mode == "delay":
                    time.sleep(delay)
                if mode == "reset_request":  # half the request reaches the hub, then RST
                    server.sendall(data[: max(1, len(data) // 2)])
                    _reset(server)
                    _reset(client)
                    return
                server.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, server):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _down(self, client: socket.socket, server: socket.socket, mode: str, delay: float) -> None:
        try:
            while data := server.recv(65536):
                if mode == "reset_response":  # the hub answered; the answer is lost
                    _reset(client)
                    server.close()
                    return
                if mode == "delay":
                    time.sleep(delay)
                client.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, server):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        """Stop accepting."""
        self._sock.close()


class RealHub:
    """``millwright hub serve`` on a fixed port and SQLite file, killable and restartable."""

    def __init__(self, workdir: Path, plant: str) -> None:
        self.workdir = workdir
        self.db = workdir / "hub.db"
        self.port = procs.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = procs.child_env(
            MILLWRIGHT_HUB_DATABASE_URL=f"sqlite:///{self.db}",
            MILLWRIGHT_HUB_ARTIFACT_ROOT=str(workdir / "artifacts"),
            MILLWRIGHT_HUB_PORT=str(self.port),
            MILLWRIGHT_HUB_ACCESS_LOG="false",
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self._cli = [sys.executable, str(procs.REPO / "millwright.py"), "hub"]
        subprocess.run([*self._cli, "db", "upgrade"], env=self.env, cwd=workdir, check=True,
                       capture_output=True)  # fmt: skip
        admin = self._token("--role", "admin", "--name", "chaos")
        self.start()
        with HubClient(self.url, token=admin) as client:
            client.create_plant(PlantCreate(id=plant, name="Chaos plant", site="C", lines=["l1"]))
        self.plant_token = self._token("--role", "plant", "--plant", plant, "--name", "node")

    def _token(self, *args: str) -> str:
        out = subprocess.run([*self._cli, "create-token", *args, "--format", "json"],
                             env=self.env, cwd=self.workdir, check=True, capture_output=True,
                             text=True)  # fmt: skip
        return str(json.loads(out.stdout)["token"])

    def start(self) -> None:
        """Serve and wait for ``/readyz``."""
        with (self.workdir / "hub.log").open("ab") as log:
            self.proc = subprocess.Popen([*self._cli, "serve"], env=self.env, cwd=self.workdir,
                                         stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        procs.wait_http(f"{self.url}/readyz", timeout_s=60, proc=self.proc)

    def kill(self) -> None:
        """SIGKILL the hub and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(15)
        self.proc = None

    def stop(self) -> None:
        """Stop it politely."""
        if self.proc is not None:
            procs.stop(self.proc)
        self.proc = None


class ThreadHub:
    """The hub app under uvicorn in a thread of this process: stopped, not killed.

    Stopping it at a random moment is the hub going away mid-delivery; the lost answer of
    a request the hub committed is the proxy's ``reset_response``. For chaos-lite, where a
    real hub process would spend most of the test starting up.
    """

    def __init__(self, workdir: Path, plant: str) -> None:
        from federation.schemas.auth import Role, TokenCreate
        from hub import migrations
        from hub.auth import service as auth_service
        from hub.config import HubSettings
        from hub.registry import service as registry_service

        self.db = workdir / "hub.db"
        self.settings = HubSettings(
            database_url=f"sqlite:///{self.db}",
            artifact_root=workdir / "artifacts",
            access_log=False,
        )
        migrations.upgrade(self.settings)
        self.port = procs.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.start()
        with self._app.state.session_factory() as session:
            registry_service.create_plant(
                session=session,
                plant_in=PlantCreate(id=plant, name="Chaos plant", site="C", lines=["l1"]),
                actor="chaos",
            )
        with self._app.state.session_factory() as session:
            self.plant_token = auth_service.create_token(
                session=session, token_in=TokenCreate(role=Role.PLANT, plant_id=plant),
                actor="chaos",
            ).token  # fmt: skip

    def start(self) -> None:
        """Serve on the same port again."""
        import uvicorn

        from hub.main import create_app

        self._app = create_app(self.settings)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(self._app, log_level="critical", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        daemon=True)  # fmt: skip
        self._thread.start()
        while not self._server.started:
            self._thread.join(0.02)

    def kill(self) -> None:
        """Stop serving at once (open connections are dropped)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = self._server.force_exit = True
            self._thread.join(10)
        self._server = self._thread = None

    stop = kill


class NodeSide:
    """The node's outbox sender: in this process (thread) or a real ``node serve`` process."""

    def __init__(self, data_dir: Path, plant: str, hub_url: str, token: str, process: bool):
        self.data_dir = data_dir
        self.plant, self.hub_url, self.token, self.process = plant, hub_url, token, process
        self.db_file = data_dir / "node.db"
        upgrade_database(f"sqlite:///{self.db_file}")
        self.engine = make_engine(f"sqlite:///{self.db_file}")
        self.factory = make_session_factory(self.engine)
        self.proc: subprocess.Popen[bytes] | None = None
        self.sender: OutboxSender | None = None
        self.client: HubClient | None = None
        self.kills = 0
        self.start()

    def start(self) -> None:
        """Start delivering."""
        if not self.process:
            self.client = HubClient(self.hub_url, token=self.token, retries=0, timeout=3)
            self.sender = OutboxSender(
                self.factory, HubClientDeliverer(self.client, self.plant),
                policy=RetryPolicy(base_delay_s=0.05, max_delay_s=0.5),
            )  # fmt: skip
            self.sender.start(0.05)
            return
        port = procs.free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable, str(procs.REPO / "millwright.py"), "node", "serve",
                "--plant", self.plant, "--hub", self.hub_url,
                "--data-dir", str(self.data_dir), "--port", str(port),
            ],
            cwd=procs.REPO,
            env=procs.child_env(
                MILLWRIGHT_NODE_OUTBOX_POLL_INTERVAL_S="0.05",
                MILLWRIGHT_NODE_OUTBOX_BASE_DELAY_S="0.05",
                MILLWRIGHT_NODE_OUTBOX_MAX_DELAY_S="0.5",
                MILLWRIGHT_NODE_HUB_TOKEN=self.token,
                MILLWRIGHT_NODE_HUB_TIMEOUT_S="3",
                MILLWRIGHT_NODE_MONITORING_ENABLED="false",
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.wait_http(f"http://127.0.0.1:{port}/v1/health", timeout_s=60, proc=self.proc)

    def kill(self) -> None:
        """SIGKILL the node process (a thread sender is stopped instead: no process to kill)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(15)
            self.proc = None
            self.kills += 1
        elif self.sender is not None:
            self.sender.stop()
            assert self.client is not None
            self.client.close()
            self.sender = None

    def pending(self) -> int:
        """Messages not yet delivered."""
        with self.factory() as session:
            return outbox_service.get_stats(session=session).pending

    def close(self) -> None:
        """Stop everything and release the database."""
        self.kill()
        self.engine.dispose()


@dataclass
class ChaosResult:
    """What a chaos run did and what the hub holds afterwards."""

    figures: dict[str, Any]
    hub_kills: int
    node_kills: int
    link_cuts: int
    connections: dict[str, int]
    seconds: float
    actions: list[str] = field(default_factory=list)


def run_chaos(
    workdir: Path,
    *,
    steps: int,
    seed: int,
    reports_per_step: int = 3,
    events_per_step: int = 4,
    node_process: bool = False,
    hub_process: bool = False,
    weights: tuple[float, ...] = (4, 2, 1, 1),
    schedule: list[str] | None = None,
    step_s: tuple[float, float] = (0.3, 1.2),
    drain_timeout_s: float = 120.0,
    log: Callable[[str], None] = lambda _: None,
) -> ChaosResult:
    """Run ``steps`` seeded chaos steps, heal, drain, and compare hub and node.

    Parameters
    ----------
    workdir
        Where the hub and node files go.
    steps
        Chaos steps; each writes reports and events, then applies one action.
    seed
        Seed of the actions and of the proxy's per-connection choices.
    reports_per_step, events_per_step
        What each step writes to the outbox.
    node_process
        Deliver from a real ``node serve`` process (also SIGKILLed) instead of a thread.
    weights
        Weights of the proxy's :data:`MODES` on a flaky link.
    schedule
        The actions in order (``flaky``, ``cut``, ``hub_kill``, ``node_kill``, ``calm``),
        cycled; None: drawn from the seeded random source.
    hub_process
        Run a real ``hub serve`` process (SIGKILLed) instead of a thread (stopped).
    step_s
        Range of a step's duration.
    drain_timeout_s
        How long the healed link may take to empty the outbox.
    log
        Progress callback.

    Returns
    -------
    ChaosResult
        ``figures`` has ``reports_lost``, ``reports_duplicated`` (and the events') and
        ``delivered_exactly_once``.
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    plant = "plant-chaos"
    hub: RealHub | ThreadHub = RealHub(workdir, plant) if hub_process else ThreadHub(workdir, plant)
    proxy = ChaosProxy(hub.port, seed, weights)
    (workdir / "node").mkdir(exist_ok=True)
    node = NodeSide(workdir / "node", plant, f"http://127.0.0.1:{proxy.port}", hub.plant_token,
                    node_process)  # fmt: skip
    made = OfflineRun()
    cadence = Cadence(lines=1, readings_per_s=1.0, chunk_rows=300)  # 12 chunks per report
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    actions = ["flaky", "flaky", "cut", "hub_kill", "calm"] + (
        ["node_kill"] if node_process else []
    )
    result = ChaosResult({}, 0, 0, 0, {}, 0.0)
    try:
        for step in range(steps):
            with managed_session(node.factory) as session:
                for i in range(reports_per_step):
                    window = t0 + dt.timedelta(hours=step * reports_per_step + i)
                    report = make_report(plant, 0, window, cadence, rng, revision=0)
                    key = str(report.report_id)
                    outbox_service.enqueue(session=session, stream="metrics", key=key,
                                           kind="metrics.report",
                                           payload=report.model_dump(mode="json"))  # fmt: skip
                    made.reports[key] = made.kept[key] = 0
                for i in range(events_per_step):
                    stream = ("alerts", "feedback", "rollout")[i % 3]
                    msg = outbox_service.enqueue(session=session, stream=stream,
                                                 kind=f"{stream}.chaos",
                                                 payload={"step": step, "i": i})  # fmt: skip
                    made.events.append(msg.idempotency_key)
            action = schedule[step % len(schedule)] if schedule else rng.choice(actions)
            result.actions.append(action)
            duration = rng.uniform(*step_s)
            log(f"step {step}: {action} for {duration:.2f}s, pending {node.pending()}")
            if action == "flaky":
                proxy.set_link(flaky=True)
                time.sleep(duration)
                proxy.set_link()
            elif action == "cut":
                proxy.set_link(cut=True)
                result.link_cuts += 1
                time.sleep(duration)
                proxy.set_link()
            elif action == "hub_kill":
                time.sleep(rng.uniform(0, duration))  # mid-delivery, at a random moment
                hub.kill()
                result.hub_kills += 1
                time.sleep(duration)
                hub.start()
            elif action == "node_kill":
                time.sleep(rng.uniform(0, duration))
                node.kill()
                node.start()
            else:
                time.sleep(duration)
        # Heal: the link passes everything, both ends are up; wait for the outbox to empty.
        proxy.set_link()
        deadline = time.monotonic() + drain_timeout_s
        while node.pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        pending = node.pending()
        if node.sender is not None:
            node.sender.wake()
    finally:
        result.node_kills = node.kills
        node.close()
        hub.stop()
        proxy.close()
    figures = exactly_once(made, hub_holdings(hub.db, plant))
    figures["pending_after_heal"] = pending
    figures["delivered_exactly_once"] = figures["delivered_exactly_once"] and pending == 0
    result.figures = figures
    result.connections = dict(proxy.modes)
    result.seconds = round(time.perf_counter() - started, 1)
    return result
