"""The environment every Flower process we start runs with: offline, no installs, our code.

Each variable below was found by reading the flwr 1.41.0 sources; the path after it is
the file (under ``flwr/``) that reads it, so a flwr upgrade can be re-checked line by line.

``FLWR_TELEMETRY_ENABLED=0``
    ``supercore/telemetry.py``: ``event()`` posts usage events to
    ``telemetry.flower.ai`` from ``flower-superlink``, ``flower-supernode`` and the apps
    unless this is ``"0"`` (also set process-wide by :mod:`federation.offline`).
``FLWR_DISABLE_UPDATE_CHECK=1``
    ``supercore/update_check.py`` (``warn_if_flwr_update_available``): called first thing
    by ``superlink/cli/flower_superlink.py``, ``supernode/cli/flower_supernode.py``,
    ``supercore/cli/flower_superexec.py`` and the ``flwr`` CLI (``cli/app.py``); without
    it each starts a thread that POSTs to ``https://api.flower.ai/v1/update-check/flwr``.
``FLWR_SUPERGRID_API_URL=http://127.0.0.1:9/flower-hub-disabled``
    ``supercore/constant.py``: base URL of the update check and of the Flower Hub app
    fetch (``superlink/servicer/control/control_handlers.py``, runs given as
    ``@account/app``). Pointing it at the loopback discard port means that even a code
    path we did not disable cannot resolve or reach ``api.flower.ai``.
``FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1``
    ``superlink/cli/flower_superlink.py`` (``_runtime_dependency_install_default``):
    SuperLink installs FAB dependencies with ``uv sync`` by default and passes
    ``--allow-runtime-dependency-installation`` to the ``flower-superexec`` it spawns
    (``_get_superexec_command``). We also pass ``--disable-runtime-dependency-installation``
    explicitly; SuperNodes install nothing unless given
    ``--allow-runtime-dependency-installation`` (``common/args.py``), which we never pass.
``FLWR_HOME``
    ``supercore/utils.py`` (``get_flwr_home``): where Flower keeps installed FABs, the
    update-check cache and CLI config; kept under ``var/`` instead of ``~/.flwr``.
``PYTHONPATH``
    The ServerApp/ClientApp processes import ``federation.apps`` from this repository
    (the FAB names the components; nothing is installed at run time).

Ports: the SuperLink serves its Fleet, Control and Runtime HTTP APIs on one
``--host/--port`` (default ``127.0.0.1:8000``, ``supercore/constant.py``
``SUPERLINK_UVICORN_DEFAULT_PORT``), and the ``flower-superexec`` it spawns connects to
that port (``_start_superexec_if_needed``). A SuperNode's Runtime API defaults to
``127.0.0.1:9094`` (``SUPERNODE_UVICORN_DEFAULT_PORT``). We always pass ``--port``
so nothing of ours binds 8000, and each SuperNode gets its own runtime port.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

# A closed loopback port: connections fail immediately, and no DNS lookup is needed.
UNREACHABLE_SUPERGRID_URL = "http://127.0.0.1:9/flower-hub-disabled"

# Not air-gap related: how often a SuperExec polls for new app tasks (default 1 s,
# ``supercore/superexec/run_superexec.py``); shorter keeps rounds snappy on loopback.
TASK_POLL_ENV = {"FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.2"}

AIR_GAP_ENV: dict[str, str] = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_SUPERGRID_API_URL": UNREACHABLE_SUPERGRID_URL,
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
}

REPO_ROOT = Path(__file__).resolve().parents[2]


def flower_environment(
    *, flwr_home: Path, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return the environment for a Flower process.

    Parameters
    ----------
    flwr_home : Path
        Directory Flower uses instead of ``~/.flwr``.
    base : Mapping[str, str] | None
        Environment to start from; the current process environment if None.

    Returns
    -------
    dict[str, str]
        ``base`` with the air-gap switches forced, ``FLWR_HOME`` set and this
        repository first on ``PYTHONPATH``.
    """
    env = dict(os.environ if base is None else base)
    env.update(AIR_GAP_ENV)
    env.update(TASK_POLL_ENV)
    env["FLWR_HOME"] = str(flwr_home)
    paths = [str(REPO_ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    # SuperLink and SuperNode spawn ``flower-superexec`` by name, from PATH.
    bin_dir = str(Path(sys.executable).parent)
    path = [bin_dir, *[p for p in env.get("PATH", "").split(os.pathsep) if p]]
    env["PATH"] = os.pathsep.join(dict.fromkeys(path))
    # Colour codes make the log files hard to read.
    env.setdefault("NO_COLOR", "1")
    return env


def apply_to_current_process(*, flwr_home: Path) -> None:
    """Apply the air-gap switches to this process (for in-process Control API clients).

    Parameters
    ----------
    flwr_home : Path
        Directory Flower uses instead of ``~/.flwr``.
    """
    os.environ.update(AIR_GAP_ENV)
    os.environ["FLWR_HOME"] = str(flwr_home)
