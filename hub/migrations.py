"""Alembic glue: the hub's migration tree, upgrades and the revision checks of /readyz."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from hub.config import HubSettings

#: ``migrations/hub`` in the source tree (the project is installed editable).
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations" / "hub"
FILE_TEMPLATE = "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"


def alembic_config(settings: HubSettings, connection: Connection | None = None) -> Config:
    """Build the Alembic config for the hub tree without any ``alembic.ini``.

    Parameters
    ----------
    settings
        Settings naming the database to migrate.
    connection
        An open connection to run on instead of creating an engine (tests).

    Returns
    -------
    Config
        Config whose ``script_location`` is ``migrations/hub``.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    config.attributes["settings"] = settings
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(settings: HubSettings, revision: str = "head") -> str | None:
    """Migrate the hub database to ``revision`` and return the revision it is at."""
    if settings.sqlite_path is not None:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), revision)
    from hub.db import make_engine

    engine = make_engine(settings)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """Return the newest revision in ``migrations/hub``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at (None before the first upgrade)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
