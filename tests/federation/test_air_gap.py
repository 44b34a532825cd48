"""Flower processes started by Millwright make no lookup of api.flower.ai and leave 8000 free.

The settings come from the flwr 1.41 sources (see ``federation/flower/environment.py``).
A ``sitecustomize`` on PYTHONPATH refuses and logs every non-loopback name lookup in the
SuperLink and in the ``flower-superexec`` it spawns. With Millwright's environment the log
stays empty; with the update check re-enabled the same harness catches both processes
reaching for api.flower.ai, which shows the harness would notice a regression.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pytest

from federation.flower.environment import AIR_GAP_ENV, flower_environment
from federation.flower.processes import (
    SuperLinkSpec,
    SuperNodeSpec,
    free_port,
    start_superlink,
    superlink_command,
    supernode_command,
    wait_for_superlink,
)

NETGUARD = Path(__file__).parent / "netguard"
PROGRAMS = ("flower-superlink", "flower-superexec")


def _listening_ports() -> set[int]:
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _superexec_running(superlink_pid: int) -> bool:
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = status.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"flower-superexec" in a for a in argv[:2]) and str(superlink_pid).encode() in argv:
            return True
    return False


def _start_guarded(tmp_path: Path, name: str, overrides: dict[str, str]) -> tuple[Path, object]:
    log = tmp_path / f"{name}-lookups.log"
    log.touch()
    spec = SuperLinkSpec(host="127.0.0.1", port=free_port(), state_dir=tmp_path / name,
                         tls=None, enable_node_auth=False)
    env = flower_environment(flwr_home=tmp_path / name / "home")
    extra = {"PYTHONPATH": f"{NETGUARD}:{env['PYTHONPATH']}", "MILLWRIGHT_NETGUARD_LOG": str(log),
             **overrides}
    process = start_superlink(spec, log_dir=tmp_path / name, extra_env=extra)
    wait_for_superlink(process, spec)
    deadline = time.monotonic() + 20
    while not _superexec_running(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _superexec_running(process.pid), "SuperLink did not spawn flower-superexec"
    return log, process


def test_commands_disable_installs_and_choose_their_ports() -> None:
    link = superlink_command(SuperLinkSpec(host="127.0.0.1", port=9092, state_dir=Path("."),
                                           tls=None, enable_node_auth=False))
    node = supernode_command(SuperNodeSpec(plant_id="p", superlink_address="127.0.0.1:9092",
                                           runtime_port=9200, state_dir=Path("."),
                                           root_certificate=None, auth_private_key=None))

    assert "--disable-runtime-dependency-installation" in link
    assert link[link.index("--port") + 1] == "9092"
    assert node[node.index("--port") + 1] == "9200"
    assert "--allow-runtime-dependency-installation" not in node
    assert AIR_GAP_ENV["FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION"] == "1"


def test_flwr_reads_the_switches_we_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from flwr.supercore import constant, update_check

    # ``flwr.superlink.cli`` re-exports the command function under the module's name.
    flower_superlink = importlib.import_module("flwr.superlink.cli.flower_superlink")

    monkeypatch.setenv("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")
    monkeypatch.setenv("FLWR_DISABLE_UPDATE_CHECK", "1")
    started: list[object] = []
    monkeypatch.setattr(update_check, "_start_flwr_update_check_refresh_thread", started.append)

    update_check.warn_if_flwr_update_available(process_name="flower-superlink")

    assert started == []
    assert constant.FLWR_DISABLE_UPDATE_CHECK in AIR_GAP_ENV
    assert flower_superlink._runtime_dependency_install_default() is False
    command = flower_superlink._get_superexec_command(
        runtime_address="127.0.0.1:9092", runtime_certificates=None,
        runtime_root_certificates_path=None, parent_pid=1, runtime_dependency_install=False,
    )
    assert "--allow-runtime-dependency-installation" not in command


@pytest.mark.slow
def test_superlink_and_superexec_make_no_lookup_and_leave_8000_free(tmp_path: Path) -> None:
    before = _listening_ports()

    log, guarded = _start_guarded(tmp_path, "guarded", {})
    try:
        time.sleep(2.0)  # the update check would run in a background thread by now
        lookups = log.read_text()
        new_ports = _listening_ports() - before
    finally:
        guarded.stop()  # type: ignore[attr-defined]

    assert lookups == ""
    assert 8000 not in new_ports

    control_log, control = _start_guarded(
        tmp_path, "control",
        {"FLWR_DISABLE_UPDATE_CHECK": "0", "FLWR_SUPERGRID_API_URL": "https://api.flower.ai/v1"},
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            seen = control_log.read_text()
            if all(f"{prog} api.flower.ai" in seen for prog in PROGRAMS):
                break
            time.sleep(0.3)
    finally:
        control.stop()  # type: ignore[attr-defined]
    for program in PROGRAMS:
        assert f"{program} api.flower.ai" in seen
