"""Run config -> typed settings."""

from pathlib import Path

import pytest

from federation.apps.run_settings import RunSettings, parse_node_plants


def test_run_config_keys_are_typed() -> None:
    settings = RunSettings.from_run_config(
        {"strategy": "fedprox", "num-server-rounds": 3, "max-update-norm": 2,
         "results-path": "/tmp/r.json", "model-path": "", "unknown-key": 1}
    )

    assert settings.strategy == "fedprox"
    assert settings.num_server_rounds == 3
    assert settings.max_update_norm == 2.0
    assert settings.results_path == Path("/tmp/r.json")
    assert settings.model_path is None


def test_unknown_fault_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="fault-mode"):
        RunSettings.from_run_config({"fault-mode": "explode"})


def test_node_plants_map() -> None:
    assert parse_node_plants("12=plant-a, 34=plant-b") == {12: "plant-a", 34: "plant-b"}
    assert parse_node_plants("") == {}
