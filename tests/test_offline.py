"""Telemetry is off in every process that imports Millwright."""

import os
import subprocess
import sys


def test_importing_federation_turns_telemetry_off() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FLWR_TELEMETRY_ENABLED", "NML_DISABLE_USAGE_LOGGING")
    }
    env["FLWR_TELEMETRY_ENABLED"] = "1"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import federation, os; "
            "print(os.environ['FLWR_TELEMETRY_ENABLED'], os.environ['NML_DISABLE_USAGE_LOGGING'])",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert out.stdout.split() == ["0", "1"]


def test_cli_lists_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "millwright", "version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("millwright ")


def test_openvino_and_nncf_telemetry_declined(tmp_path) -> None:
    env = dict(os.environ, HOME=str(tmp_path))
    code = (
        "import federation\n"
        "from openvino_telemetry.utils.opt_in_checker import OptInChecker, ConsentCheckResult\n"
        "print(OptInChecker().check(enable_opt_in_dialog=False) == ConsentCheckResult.DECLINED)\n"
        "import nncf.telemetry.wrapper as w; print(type(w.telemetry).__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    declined, nncf_sender = out.stdout.split()
    assert declined == "True"
    assert nncf_sender != "NNCFTelemetry"  # the stub (a MagicMock subclass) sends nothing
    assert (tmp_path / "intel" / "openvino_telemetry").read_text() == "0"
