"""Alembic environment of the plant node: metadata from plant_node.db, URL from NodeSettings."""

from __future__ import annotations

from alembic import context

from plant_node.config import NodeSettings
from plant_node.db import load_metadata, make_engine

config = context.config
target_metadata = load_metadata()


def _url() -> str:
    # upgrade_database() sets the URL explicitly; the bare alembic CLI falls back to settings.
    url = config.get_main_option("sqlalchemy.url")
    return url or NodeSettings().db_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
