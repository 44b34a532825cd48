"""Migrations are the only source of the schema, and they agree with the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import text

from hub import migrations
from hub.config import HubSettings
from hub.db import make_engine
from hub.main import create_app
from hub.tables import metadata


def test_models_and_migrations_agree(hub_settings: HubSettings) -> None:
    # Prepare: the fixture database was built by `upgrade head` only.
    engine = make_engine(hub_settings)

    # Execute
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    engine.dispose()

    # Assert
    assert diff == [], f"models and migrations disagree; add a revision: {diff}"


def test_database_is_at_head_and_upgrade_is_idempotent(hub_settings: HubSettings) -> None:
    assert migrations.upgrade(hub_settings) == migrations.head_revision()
    assert migrations.upgrade(hub_settings) == migrations.head_revision()


def test_revision_files_are_date_prefixed() -> None:
    names = [p.name for p in (migrations.MIGRATIONS_DIR / "versions").glob("*.py")]
    assert names
    assert all(n[:8].isdigit() and n[8] == "_" for n in names), names


def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    settings = HubSettings(database_url=f"sqlite:///{tmp_path / 'hub.db'}")
    migrations.upgrade(settings)
    engine = make_engine(settings)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == settings.sqlite_busy_timeout_ms
    engine.dispose()


def test_readyz_reports_pending_migrations(tmp_path: Path) -> None:
    # Prepare: an empty database that was never migrated.
    settings = HubSettings(
        database_url=f"sqlite:///{tmp_path / 'empty.db'}", artifact_root=tmp_path / "a"
    )

    # Execute
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")

    # Assert
    assert response.status_code == 503
    assert response.json()["status"] == "migrations_pending"
    assert response.json()["database"] is True
    assert response.json()["head_revision"] == migrations.head_revision()


def test_readyz_reports_unreachable_database(tmp_path: Path) -> None:
    settings = HubSettings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", artifact_root=tmp_path / "a"
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["database"] is False


def test_cli_db_upgrade_and_current(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from hub.cli import app as hub_cli

    monkeypatch.setenv("MILLWRIGHT_HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    upgraded = runner.invoke(hub_cli, ["db", "upgrade"])
    current = runner.invoke(hub_cli, ["db", "current", "--format", "json"])
    assert upgraded.exit_code == 0, upgraded.output
    assert json.loads(current.output) == {
        "current": migrations.head_revision(),
        "head": migrations.head_revision(),
    }
