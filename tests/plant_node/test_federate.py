"""``millwright node federate``: the plant's own SuperNode, TLS + node auth, air-gapped."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from federation.flower.environment import AIR_GAP_ENV, flower_environment
from federation.flower.processes import supernode_command
from plant_node.cli import app, supernode_spec


def test_supernode_spec_carries_plant_tls_and_auth(tmp_path: Path) -> None:
    spec = supernode_spec(
        plant_id="FD002", superlink="hub.example:9092", root_cert=tmp_path / "ca.crt",
        auth_key=tmp_path / "FD002", data_dir=tmp_path / "data", state_dir=tmp_path / "state",
        runtime_port=9301,
    )

    argv = supernode_command(spec)
    env = flower_environment(flwr_home=spec.state_dir / "flwr-home", base={})

    assert argv[argv.index("--superlink") + 1] == "hub.example:9092"
    assert argv[argv.index("--root-certificates") + 1] == str(tmp_path / "ca.crt")
    assert argv[argv.index("--auth-supernode-private-key") + 1] == str(tmp_path / "FD002")
    assert "--insecure" not in argv and "--allow-runtime-dependency-installation" not in argv
    config = argv[argv.index("--node-config") + 1]
    assert 'plant-id="FD002"' in config and f'data-dir="{tmp_path / "data"}"' in config
    assert all(env[k] == v for k, v in AIR_GAP_ENV.items())


def test_federate_refuses_to_run_without_tls() -> None:
    result = CliRunner().invoke(app, ["federate", "--plant", "FD001"])

    assert result.exit_code == 2
    assert "--root-cert" in result.output


def test_sigterm_stops_the_supernode_promptly_and_cleanly(tmp_path: Path) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:  # a SuperLink address nobody listens on: the node keeps retrying
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "millwright", "node", "federate", "--plant", "fd001",
         "--insecure", "--superlink", f"127.0.0.1:{port}", "--state-dir", str(tmp_path),
         "--data-dir", str(tmp_path / "data"), "--runtime-port", str(port + 1)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "SuperNode of fd001 started (pid N, ...)"
        assert "started (pid" in line, line + proc.stderr.read()  # type: ignore[union-attr]
        supernode = int(line.split("pid ", 1)[1].split(",", 1)[0])
        time.sleep(1.0)

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        seconds = time.monotonic() - started
        stderr = proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    assert code == 0 and "Traceback" not in stderr, stderr
    assert seconds < 12  # the SuperNode's own SIGTERM grace, not two 10 s lock timeouts
    try:
        os.kill(supernode, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive
