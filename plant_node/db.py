"""Node database: declarative base, SQLite engine with WAL, managed sessions, migrations."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic_core import to_json
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations" / "node"

# Every module that defines node tables; Alembic and the no-diff test load them all.
MODEL_MODULES: tuple[str, ...] = (
    "plant_node.auth.models",
    "plant_node.outbox.models",
    "plant_node.serving.models",
    "plant_node.monitoring.models",
    "plant_node.scheduling.models",
    "plant_node.retraining.models",
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def json_dumps(value: Any) -> str:
    """Serialize a JSON column value with pydantic-core instead of ``json.dumps``.

    Prediction log rows are float-heavy (a C-MAPSS row holds ~1,200 numbers); the Rust
    serializer is ~12x faster there and writes the same values (NaN/Infinity kept as
    ``json.dumps`` writes them, so what is read back is unchanged).
    """
    return to_json(value, inf_nan_mode="constants").decode()


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored naive-UTC and always returned timezone-aware (SQLite drops tzinfo)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Store as naive UTC; refuse naive input."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Return aware UTC."""
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of every node table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CreatedAtMixin:
    """Adds a ``created_at`` timestamp set on insert."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


def load_metadata() -> MetaData:
    """Import every node model module and return the complete metadata.

    Returns
    -------
    MetaData
        ``Base.metadata`` with all node tables registered.
    """
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return Base.metadata


def make_engine(
    url: str, *, busy_timeout_ms: int = 5000, echo: bool = False, synchronous: str = "FULL"
) -> Engine:
    """Create an engine; on SQLite turn on WAL, foreign keys and a busy timeout per connection.

    Parameters
    ----------
    url
        SQLAlchemy database URL.
    busy_timeout_ms
        How long a SQLite writer waits for the lock before failing.
    echo
        Log SQL statements.
    synchronous
        SQLite ``PRAGMA synchronous``: ``FULL`` (default) fsyncs the WAL at every commit, so
        a committed row survives power loss as well as a killed process; ``NORMAL`` survives
        a killed process only (the WAL tail may be lost with the OS).

    Returns
    -------
    Engine
        The configured engine.
    """
    is_sqlite = url.startswith("sqlite")
    level = synchronous.upper()
    if level not in {"FULL", "NORMAL", "EXTRA"}:
        raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
    connect_args: dict[str, Any] = {}
    if is_sqlite:
        # Sessions cross threads (threadpool routes, the outbox sender); each checkout is exclusive.
        connect_args = {"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
    engine = create_engine(
        url,
        echo=echo,
        connect_args=connect_args,
        pool_pre_ping=not is_sqlite,
        json_serializer=json_dumps,
    )
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            # A prediction is acknowledged only after its commit: make the commit an fsync.
            cur.execute(f"PRAGMA synchronous={level}")
            cur.close()

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory used by requests, jobs and the outbox sender."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def managed_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session that commits on success, rolls back on error and always closes.

    Parameters
    ----------
    factory
        Session factory to open the session from.

    Yields
    ------
    Session
        The open session.
    """
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Any:
    """Build the Alembic config for the node's migration tree, pointed at ``url``.

    Parameters
    ----------
    url
        Database URL to migrate.

    Returns
    -------
    alembic.config.Config
        Config with ``script_location`` and ``sqlalchemy.url`` set.
    """
    from alembic.config import Config

    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_database(url: str, revision: str = "head") -> None:
    """Apply the node's Alembic migrations up to ``revision``.

    Parameters
    ----------
    url
        Database URL to migrate.
    revision
        Target revision.
    """
    from alembic import command

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    """Return the database's current Alembic revision, or None if unmigrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@functools.cache
def head_revision() -> str | None:
    """Return the head revision of the node migration tree."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
