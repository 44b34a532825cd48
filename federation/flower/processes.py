"""Start, watch and stop ``flower-superlink`` and ``flower-supernode`` processes.

Each process runs in its own session (process group) so that stopping it also stops the
``flower-superexec`` and app processes it spawned; stdout and stderr go to a log file.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from federation.flower.certs import TlsFiles
from federation.flower.environment import flower_environment


class FlowerProcessError(RuntimeError):
    """A Flower process failed to start or exited early."""


def _executable(name: str) -> str:
    """Return the console script ``name`` from this interpreter's environment."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FlowerProcessError(f"{name} is not installed in this environment")
    return found


@dataclass
class ManagedProcess:
    """A running Flower process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """Process id of the Flower process (also its process group id)."""
        return self.popen.pid

    def is_running(self) -> bool:
        """Return True while the process has not exited."""
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """Return the last ``lines`` lines of the log file."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the process and everything it spawned at once (a crashed machine).

        The SuperLink starts ``flower-superexec`` in a session of its own (and the ServerApp
        in that one), so the process group alone would leave them running.
        """
        descendants = _descendants(self.popen.pid)
        self._signal_group(signal.SIGKILL)
        _kill_all(descendants)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process group, killing it if it does not exit in time."""
        descendants = _descendants(self.popen.pid) if self.popen.poll() is None else []
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout=timeout)
        # Children (superexec, app processes) may outlive a leader that exited first.
        self._signal_group(signal.SIGKILL)
        _kill_all(descendants)

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (None if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # "pid (comm) state ppid ...": comm may hold ")"


def _descendants(pid: int) -> list[tuple[int, str]]:
    """Return (pid, start time) of every live descendant of ``pid`` (Linux ``/proc``)."""
    children: dict[int, list[tuple[int, str]]] = {}
    try:
        pids = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]
    except OSError:
        return []
    for other in pids:
        fields = _stat_fields(other)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append((other, fields[19]))
    found: list[tuple[int, str]] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child[0])
    return found


def _kill_all(processes: list[tuple[int, str]]) -> None:
    """SIGKILL each process that is still the one seen (same start time, so no reused id)."""
    for pid, started in processes:
        fields = _stat_fields(pid)
        if fields is None or fields[19] != started:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass(frozen=True)
class SuperLinkSpec:
    """How to run the SuperLink.

    ``tls`` None means ``--insecure`` (fast unit tests only); node authentication
    requires TLS.
    """

    host: str
    port: int
    state_dir: Path
    tls: TlsFiles | None
    enable_node_auth: bool = True
    database: Path | None = None

    @property
    def address(self) -> str:
        """``host:port`` of the SuperLink's Fleet/Control/Runtime HTTP API."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SuperNodeSpec:
    """How to run one plant's SuperNode."""

    plant_id: str
    superlink_address: str
    runtime_port: int
    state_dir: Path
    root_certificate: Path | None
    auth_private_key: Path | None
    node_config: dict[str, str | int | float] = field(default_factory=dict)


def _config_value(value: str | int | float) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def superlink_command(spec: SuperLinkSpec) -> list[str]:
    """Return the ``flower-superlink`` command line for ``spec``."""
    cmd = [
        _executable("flower-superlink"),
        "--host", spec.host,
        "--port", str(spec.port),
        "--isolation", "subprocess",
        "--disable-runtime-dependency-installation",
    ]
    if spec.database is not None:
        cmd += ["--database", str(spec.database)]
    if spec.tls is None:
        if spec.enable_node_auth:
            raise ValueError("SuperNode authentication requires TLS")
        cmd.append("--insecure")
    else:
        cmd += [
            "--ssl-ca-certfile", str(spec.tls.ca_cert),
            "--ssl-certfile", str(spec.tls.server_cert),
            "--ssl-keyfile", str(spec.tls.server_key),
        ]
    if spec.enable_node_auth:
        cmd.append("--enable-supernode-auth")
    return cmd


def supernode_command(spec: SuperNodeSpec) -> list[str]:
    """Return the ``flower-supernode`` command line for ``spec``."""
    config = {"plant-id": spec.plant_id, **spec.node_config}
    cmd = [
        _executable("flower-supernode"),
        "--superlink", spec.superlink_address,
        "--host", "127.0.0.1",
        "--port", str(spec.runtime_port),
        "--isolation", "subprocess",
        "--node-config", " ".join(f"{k}={_config_value(v)}" for k, v in config.items()),
    ]
    if spec.root_certificate is None:
        cmd.append("--insecure")
    else:
        cmd += ["--root-certificates", str(spec.root_certificate)]
    if spec.auth_private_key is not None:
        cmd += ["--auth-supernode-private-key", str(spec.auth_private_key)]
    return cmd


def _spawn(
    name: str,
    cmd: list[str],
    *,
    state_dir: Path,
    log_path: Path,
    extra_env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = flower_environment(flwr_home=state_dir / "flwr-home")
    env.update(extra_env or {})
    with log_path.open("ab") as log_file:
        popen = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            cmd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=state_dir,
            start_new_session=True,
        )
    return ManagedProcess(name=name, popen=popen, log_path=log_path)


def start_superlink(
    spec: SuperLinkSpec, *, log_dir: Path, extra_env: Mapping[str, str] | None = None
) -> ManagedProcess:
    """Start ``flower-superlink`` (returns at once; see :func:`wait_for_superlink`).

    ``extra_env`` is applied last, over the air-gap environment (tests only).
    """
    return _spawn(
        "superlink", superlink_command(spec),
        state_dir=spec.state_dir, log_path=log_dir / "superlink.log", extra_env=extra_env,
    )


def start_supernode(
    spec: SuperNodeSpec, *, log_dir: Path, extra_env: Mapping[str, str] | None = None
) -> ManagedProcess:
    """Start one plant's ``flower-supernode`` (returns at once)."""
    return _spawn(
        f"supernode-{spec.plant_id}", supernode_command(spec),
        state_dir=spec.state_dir, log_path=log_dir / f"supernode-{spec.plant_id}.log",
        extra_env=extra_env,
    )


def wait_for_superlink(
    process: ManagedProcess, spec: SuperLinkSpec, *, timeout: float = 60.0
) -> None:
    """Block until the SuperLink answers ``GET /health`` over its own TLS setting.

    Raises
    ------
    FlowerProcessError
        If the process exits or does not answer within ``timeout`` seconds.
    """
    import httpx

    scheme = "http" if spec.tls is None else "https"
    verify: str | bool = False if spec.tls is None else str(spec.tls.ca_cert)
    url = f"{scheme}://{spec.address}/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.is_running():
            raise FlowerProcessError(
                f"flower-superlink exited with {process.popen.returncode}:\n"
                + process.log_tail()
            )
        try:
            if httpx.get(url, verify=verify, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise FlowerProcessError(f"flower-superlink not ready after {timeout}s:\n" + process.log_tail())


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return ``count`` distinct TCP ports that are free on ``host`` right now."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    return free_ports(1, host)[0]
