"""The demo runs end to end on embedded defaults, and federation never imports the hub."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from federation.demo import AI4I_PLANTS, CMAPSS_PLANTS, DEMO_PLANTS

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLWRIGHT_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.slow
def test_demo_run_exits_zero_and_runs_the_whole_loop(tmp_path: Path) -> None:
    # Execute: once (the demo trains, federates, serves and monitors; minutes on 2 cores).
    # Its own session, so a timeout takes down the hub, nodes and SuperNodes it started too
    # (subprocess.run would kill only the demo and leave them running).
    proc = subprocess.Popen(
        [sys.executable, "-m", "millwright", "demo", "run"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=1200)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"the demo took over 1200 s; its output so far:\n{stdout}\n{stderr}")
    run = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    # Assert
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert "demo finished" in out
    for plant in DEMO_PLANTS:
        assert plant.id in out
    # Baselines published and assigned.
    assert "published cmapss-rul-cnn" in out and "published ai4i-failure-mlp" in out
    # Federation: TLS SuperLink, SuperNodes started by the plant nodes, campaign registered.
    assert "TLS, SuperNode authentication on" in out
    assert "SuperNodes online: fd001, fd002, fd003, fd004" in out
    assert "global model registered as version" in out
    for plant in CMAPSS_PLANTS:
        assert f"{plant}: champion is now its personalized version" in out
        assert f"plant node {plant} ready" in out
        # Each node served its test stream with its campaign model, without fallback.
        line = next(x for x in out.splitlines() if x.startswith(f"{plant} (FD00"))
        assert " 0 fallback" in line and " 0 predictions" not in line
    # Governance: champions only through promotions; a refusal with reasons; four eyes.
    assert "(promotion " in out and "promotion-first-champion@1, approved)" in out
    assert "promotion refused by the gate: promotion refused" in out
    assert "requester approving own request refused: four_eyes" in out
    assert "approved with e-signature by Quinn Quality" in out
    for plant in AI4I_PLANTS:  # the milling lines serve the published AI4I champion
        line = next(x for x in out.splitlines() if x.startswith(f"{plant} (AI4I"))
        assert " 0 fallback" in line and " 0 rejected" in line and " 0 predictions" not in line
        assert " 900 QA verdicts" in line
        assert f"{plant}: " in out and f"{plant}: 0 chunks monitored" not in out
    # Monitoring: the shifted plant's table and alert; every plant's report on the hub.
    assert "estimated (nannyml DLE) vs realized RMSE per chunk" in out
    assert "ALERT fd001" in out
    # Retraining: fd001's trigger fired on the node, reached the hub with the plant's token,
    # was decided by policy and its candidate trained and settled (promoted or refused).
    assert "FIRED fd001 drift_sustained" in out
    assert "Retraining fd001/rt_" in out and "local_fine_tune" in out
    settled = out[out.index("Retraining fd001/rt_") :]
    assert "candidate " in settled and "fed-c2-fd001" in settled
    assert "latest cross-plant metrics" in out
    hub_table = out[out.index("latest cross-plant metrics") :]
    for plant in DEMO_PLANTS:  # every plant's anonymized report reached the hub
        assert plant.id in hub_table
    # The lines: fd001 fed from an OPC UA PLC, ai4i-l over MQTT; every answer came back.
    assert "fd001: 40/40 predictions arrived on" in out
    assert "ai4i-l: 60/60 predictions arrived on" in out
    assert "PLC tags written back over OPC UA: TestCell1.rul=" in out
    # TLS on every hop: hub and nodes over HTTPS, the MQTT broker over TLS, all on the demo CA.
    assert "hub ready at https://" in out and ": TLS only (demo CA pinned)" in out
    for plant in DEMO_PLANTS:
        assert f"plant node {plant.id} ready at https://127.0.0.1:" in out
    assert (tmp_path / "var" / "hub" / "hub.db").is_file()
    for plant in CMAPSS_PLANTS:
        local = tmp_path / "var" / f"node-{plant}" / "data"
        assert sorted(p.name for p in local.iterdir())[-1] == f"train_{plant.upper()}.txt.gz"


def test_federation_does_not_import_the_hub() -> None:
    code = (
        "import sys, federation.demo, federation.hub_client; "
        "bad = [m for m in sys.modules if m == 'hub' or m.startswith('hub.')]; "
        "assert not bad, bad; assert 'torch' not in sys.modules"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
