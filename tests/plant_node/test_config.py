"""NodeSettings derives per-plant paths and refuses placeholder secrets in production."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from plant_node.config import NodeSettings


def test_paths_derive_from_plant_id() -> None:
    settings = NodeSettings(plant_id="lyon-2")

    assert settings.data_path == Path("var/node-lyon-2")
    assert settings.cache_path == Path("var/node-lyon-2/models")
    assert settings.db_url == "sqlite:///var/node-lyon-2/node.db"


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILLWRIGHT_NODE_PLANT_ID", "p9")
    monkeypatch.setenv("MILLWRIGHT_NODE_HUB_URL", "http://hub:8000/")

    settings = NodeSettings()

    assert settings.plant_id == "p9"
    assert settings.hub_url == "http://hub:8000"


@pytest.mark.parametrize("token", [None, "changeme"])
def test_production_refuses_placeholder_token(token: str | None) -> None:
    with pytest.raises(ValidationError, match="HUB_TOKEN"):
        NodeSettings(environment="production", hub_token=token)


def test_plant_id_must_be_a_safe_path_segment() -> None:
    with pytest.raises(ValidationError):
        NodeSettings(plant_id="../etc")
