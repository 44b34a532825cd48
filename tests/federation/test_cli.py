"""``millwright federation`` commands that need no running SuperLink."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from federation.cli import app


def test_certs_writes_tls_files_and_node_keys_once(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["certs", "--var-dir", str(tmp_path), "--plant", "FD001", "--format", "json"]

    first = runner.invoke(app, args)
    second = runner.invoke(app, args)

    assert first.exit_code == 0, first.output
    paths = json.loads(first.output)
    assert Path(paths["ca_cert"]).exists() and Path(paths["server_key"]).exists()
    assert Path(paths["supernode_keys"]["FD001"]["public"]).read_text().startswith("ecdsa-sha2-")
    assert json.loads(second.output) == paths  # existing material is reused, not replaced
    ca = Path(paths["ca_cert"]).read_bytes()
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    assert Path(paths["ca_cert"]).read_bytes() != ca


def test_run_refuses_a_malformed_config_item(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--results", str(tmp_path / "r.json"), "--insecure", "-c", "no-equals"]
    )

    assert result.exit_code != 0
    assert "key=value" in result.output
