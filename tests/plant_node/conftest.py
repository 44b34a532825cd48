"""Fixtures for node tests: a database migrated once per session and copied per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from plant_node.config import NodeSettings
from plant_node.db import make_engine, make_session_factory, upgrade_database
from tests.plant_node.keys import BOOTSTRAP


@pytest.fixture(scope="session")
def migrated_db_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("node-template") / "node.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture
def node_settings(tmp_path: Path, migrated_db_file: Path) -> NodeSettings:
    db_file = tmp_path / "node.db"
    shutil.copy(migrated_db_file, db_file)
    return NodeSettings(
        plant_id="plant-t",
        data_dir=tmp_path,
        database_url=f"sqlite:///{db_file}",
        outbox_enabled=False,
        bootstrap_keys=BOOTSTRAP,
    )


@pytest.fixture
def engine(node_settings: NodeSettings) -> Iterator[Engine]:
    eng = make_engine(node_settings.db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)
