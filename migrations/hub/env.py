"""Alembic environment of the hub: metadata from hub.tables, URL from HubSettings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from hub.config import HubSettings
from hub.db import make_engine
from hub.tables import metadata

config = context.config


def _settings() -> HubSettings:
    settings = config.attributes.get("settings")
    if isinstance(settings, HubSettings):
        return settings
    url = config.get_main_option("sqlalchemy.url")
    return HubSettings(database_url=url) if url else HubSettings()


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_offline() -> None:
    context.configure(
        url=_settings().database_url,
        target_metadata=metadata,
        literal_binds=True,
        compare_type=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_settings())
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
