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
