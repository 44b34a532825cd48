"""HubSettings reads only MILLWRIGHT_HUB_* (and the shared database URL) and normalises drivers."""

from __future__ import annotations

import pytest

from hub.config import HubSettings


def test_prefixed_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILLWRIGHT_HUB_MAX_PAGE_SIZE", "77")
    monkeypatch.setenv("MILLWRIGHT_HUB_DATABASE_URL", "sqlite:///x.db")
    settings = HubSettings()
    assert settings.max_page_size == 77
    assert settings.database_url == "sqlite:///x.db"


def test_shared_database_url_is_accepted_and_driver_normalised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MILLWRIGHT_HUB_DATABASE_URL", raising=False)
    monkeypatch.setenv("MILLWRIGHT_DATABASE_URL", "postgresql://u@db:5432/hub")
    assert HubSettings().database_url == "postgresql+psycopg://u@db:5432/hub"


def test_default_is_sqlite_under_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MILLWRIGHT_HUB_DATABASE_URL", raising=False)
    monkeypatch.delenv("MILLWRIGHT_DATABASE_URL", raising=False)
    settings = HubSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.is_sqlite
    assert settings.sqlite_path is not None and settings.sqlite_path.parts[0] == "var"


def test_inconsistent_page_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="default_page_size"):
        HubSettings(default_page_size=100, max_page_size=10)


def test_readme_configuration_table_lists_every_setting() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [n for n in HubSettings.model_fields if f"`MILLWRIGHT_HUB_{n.upper()}`" not in readme]
    assert not missing, f"add these to the README configuration table: {missing}"
