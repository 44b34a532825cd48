"""Start a real hub process for a benchmark: migrate, mint an admin token, serve, kill, restart.

One helper for every benchmark that talks to ``millwright hub serve`` over HTTP, so they all
run the hub the way the README recommends (one uvicorn worker, its own environment).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hub_env(
    database_url: str, workdir: Path, port: int, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The hub's environment: this checkout first on the path, no inherited hub settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLWRIGHT_HUB_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        MILLWRIGHT_HUB_DATABASE_URL=database_url,
        MILLWRIGHT_HUB_ARTIFACT_ROOT=str(workdir / "artifacts"),
        MILLWRIGHT_HUB_PORT=str(port),
    )
    env.update(extra or {})
    return env


class HubProcess:
    """``millwright hub serve`` in a child process; ``kill`` and ``start`` again on the same DB.

    Parameters
    ----------
    database_url
        The hub database (migrated by :meth:`prepare`).
    workdir
        Working directory (artifacts, ``hub.log``).
    extra_env
        More ``MILLWRIGHT_HUB_*`` settings.
    """

    def __init__(
        self, database_url: str, workdir: Path, extra_env: Mapping[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.env = hub_env(database_url, workdir, self.port, extra_env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._cli = [sys.executable, "-m", "millwright", "hub"]

    def prepare(self, token_name: str = "bench") -> str:
        """Migrate the database and mint an admin token (returned and kept)."""
        subprocess.run(
            [*self._cli, "db", "upgrade"],
            env=self.env,
            cwd=self.workdir,
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            [*self._cli, "create-token", "--role", "admin", "--name", token_name,
             "--format", "json"],
            env=self.env,
            cwd=self.workdir,
            check=True,
            capture_output=True,
            text=True,
        )  # fmt: skip
        self.token = str(json.loads(out.stdout)["token"])
        return self.token

    def start(self, timeout: float = 60.0) -> None:
        """Serve and wait until ``/readyz`` answers 200."""
        with (self.workdir / "hub.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [*self._cli, "serve"],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hub did not start; see {self.workdir / 'hub.log'}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the hub (no shutdown hooks run) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=15)
        self.proc = None

    def stop(self) -> None:
        """Terminate the hub politely."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None


@contextmanager
def running_hub(
    database_url: str,
    workdir: Path,
    *,
    token_name: str = "bench",
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[HubProcess]:
    """Migrate, mint an admin token, serve; stop the hub on exit."""
    hub = HubProcess(database_url, workdir, extra_env)
    hub.prepare(token_name)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()
