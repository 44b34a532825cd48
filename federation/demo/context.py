"""What the demo steps share: the context, the error type, ports and child processes."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from rich.console import Console

from federation.hub_client import HubClient
from federation.tls import client_context

if TYPE_CHECKING:
    from federation.flower.deployment import LocalFederation
    from federation.schemas.campaigns import CampaignRead

PROJECT_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0
T = TypeVar("T")



@dataclass
class DemoContext:
    """State the steps share: where things live, the processes, the admin client."""

    workdir: Path
    console: Console
    env: dict[str, str] = field(default_factory=dict)
    hub_url: str = ""
    #: CA that signed the hub's (and the SuperLink's) certificate; every client pins it.
    ca_file: Path | None = None
    admin_token: str = ""
    hub_process: subprocess.Popen[bytes] | None = None
    hub_log: Path | None = None
    hub: HubClient | None = None
    published: list[dict[str, Any]] = field(default_factory=list)
    federation: LocalFederation | None = None
    supernodes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    nodes: dict[str, tuple[subprocess.Popen[bytes], str]] = field(default_factory=dict)
    # plant -> {"line": key, "engineer": key}: the node keys the demo created for each node.
    node_keys: dict[str, dict[str, str]] = field(default_factory=dict)
    campaign: CampaignRead | None = None

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What the demo's own HTTP calls verify TLS with (the pinned demo CA)."""
        return client_context(self.ca_file) if self.ca_file is not None else True

    @property
    def var_dir(self) -> Path:
        """Where the demo keeps its databases, artifacts and logs."""
        return self.workdir / "var"

    def node_dir(self, plant: str) -> Path:
        """Return a plant node's state directory (database, logs, local data in ``data/``)."""
        return self.var_dir / f"node-{plant}"

    def millwright(
        self, *args: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``millwright ARGS`` (demo environment plus ``extra_env``); raise on failure."""
        cmd = [sys.executable, "-m", "millwright", *args]
        env = {**self.env, **(extra_env or {})}
        result = subprocess.run(
            cmd, cwd=self.workdir, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise DemoError(
                f"`millwright {' '.join(args)}` failed ({result.returncode}):\n"
                + result.stderr.strip()
            )
        return result



class DemoError(RuntimeError):
    """A demo step failed; the message says which and why."""



Step = tuple[str, Callable[[DemoContext], None]]



def free_port(preferred: int) -> int:
    """Return ``preferred`` when it is free on loopback, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise DemoError("no free TCP port on 127.0.0.1")



def free_ports(count: int, preferred: int) -> list[int]:
    """Return ``count`` distinct free loopback ports, from ``preferred`` upwards when free.

    All are held open together while choosing, so none is handed out twice.
    """
    held: list[socket.socket] = []
    try:
        port = preferred
        while len(held) < count and port < preferred + 1000:
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
                held.append(sock)
            except OSError:
                sock.close()
            port += 1
        while len(held) < count:  # the preferred range is busy: any free ports
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
        return [int(s.getsockname()[1]) for s in held]
    finally:
        for sock in held:
            sock.close()


def run_per_plant(
    plants: list[str], work: Callable[[str], T], *, workers: int = 4
) -> dict[str, T]:
    """Run ``work(plant)`` for every plant concurrently; return the results by plant.

    The first failure (a :class:`DemoError`, say) is raised after every started call ended,
    so no plant is left half-done behind the error.
    """
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(plants)))) as pool:
        futures = {plant: pool.submit(work, plant) for plant in plants}
    return {plant: future.result() for plant, future in futures.items()}


def spawn_until_ready(
    ctx: DemoContext, args: list[str], log_path: Path, ready_url: str, what: str,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``millwright ARGS`` logging to ``log_path``; return once ``ready_url`` answers 200."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "millwright", *args],
            cwd=ctx.workdir, env=env or ctx.env, stdout=log, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise DemoError(f"the {what} exited with {proc.returncode}; log tail:\n{tail}")
        try:
            if httpx.get(ready_url, timeout=2.0, verify=ctx.verify).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise DemoError(
        f"the {what} did not become ready within {READY_TIMEOUT_S:.0f} s; see {log_path}"
    )



def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Ask a child process to stop (SIGINT), kill it after 10 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

