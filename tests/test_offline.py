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
            "import federation, os; print(os.environ['FLWR_TELEMETRY_ENABLED'], os.environ['NML_DISABLE_USAGE_LOGGING'])",
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
