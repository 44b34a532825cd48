"""The node database: SQLite pragmas, and migrations that match the models exactly."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from plant_node.db import MIGRATIONS_DIR, current_revision, head_revision, load_metadata


def test_sqlite_pragmas(engine: Engine) -> None:
    with engine.connect() as conn:
        journal = conn.execute(text("PRAGMA journal_mode")).scalar()
        fks = conn.execute(text("PRAGMA foreign_keys")).scalar()
        busy = conn.execute(text("PRAGMA busy_timeout")).scalar()

    assert journal == "wal"
    assert fks == 1
    assert busy == 5000


def test_database_is_at_head(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()


def test_autogenerate_yields_no_diff(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, load_metadata())

    assert diff == []


def test_revision_files_are_date_prefixed() -> None:
    files = sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("*.py"))

    assert files
    assert all(name[:8].isdigit() and name[8] == "_" for name in files), files
    assert (MIGRATIONS_DIR / "env.py").exists()
    assert isinstance(MIGRATIONS_DIR, Path)
