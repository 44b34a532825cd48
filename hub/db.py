"""Declarative base, column types, engine construction and session scopes of the hub."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pydantic_core
from sqlalchemy import JSON, DateTime, Engine, MetaData, String, create_engine, event, text
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from hub.config import HubSettings

# Stable constraint names, so Alembic diffs and PostgreSQL/SQLite migrations agree.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamp stored in UTC and always returned timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        """Normalise to UTC before storing."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        """Attach UTC to naive values read back from SQLite."""
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every hub table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON()}


class CreatedMixin:
    """Who created a row and when (part of every audited entity)."""

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="system")


_SQLITE_WRITER = "millwright_sqlite_writer"


def _sqlite_pragmas(settings: HubSettings) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control so BEGIN is emitted by SQLAlchemy (pysqlite quirk).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def _json_loads(text: str | bytes) -> Any:
    # pydantic-core's Rust parser: a page of versions decodes three JSON columns per row, and
    # the stdlib decoder was the largest single cost of the registry's list reads.
    return pydantic_core.from_json(text)


def make_engine(settings: HubSettings) -> Engine:
    """Build the engine for ``settings.database_url``.

    SQLite gets WAL, foreign keys and a busy timeout on every connection; PostgreSQL gets
    a pre-pinged pool through psycopg 3.

    Parameters
    ----------
    settings
        Hub settings naming the database.

    Returns
    -------
    Engine
        A ready engine; nothing is created in the database.
    """
    if settings.is_sqlite:
        path = settings.sqlite_path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            settings.database_url,
            connect_args={
                "check_same_thread": False,
                "timeout": settings.sqlite_busy_timeout_ms / 1000,
            },
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,
            json_deserializer=_json_loads,
        )
        event.listen(engine, "connect", _sqlite_pragmas(settings))

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Request sessions that may write (make_request_session_factory) begin
            # IMMEDIATE: a deferred transaction that reads (the token lookup) and then writes
            # fails at once with "database is locked" when another connection committed in
            # between (a stale WAL snapshot; busy_timeout does not apply). Others stay DEFERRED.
            immediate = conn.get_execution_options().get(_SQLITE_WRITER, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(
        settings.database_url,
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        json_deserializer=_json_loads,
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory bound to ``engine`` (objects survive commit).

    Jobs, workers and the CLI use it; a use case of theirs that reads and then writes on
    SQLite calls :func:`begin_write` first.
    """
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def make_request_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory for requests that may write (every method but GET/HEAD).

    On SQLite their transactions begin IMMEDIATE: the token lookup reads before the use case
    writes, and a deferred transaction that read and then writes fails at once ("database is
    locked", no busy wait) when another connection committed in between (a stale WAL
    snapshot). A request holds no transaction across slow I/O, so taking the write lock at
    its first statement costs a wait of at most the busy timeout. Workers, whose steps call
    Flower or receivers mid-transaction, keep :func:`make_session_factory`.
    """
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(**{_SQLITE_WRITER: True})
    return make_session_factory(engine)


def begin_write(session: Session) -> None:
    """On SQLite, take the write lock before the use case reads (no-op on PostgreSQL).

    A SQLite transaction that reads and then writes fails at once ("database is locked",
    no busy wait) when another connection committed in between (a stale WAL snapshot). The
    hub's worker threads write beside the requests, so use cases that read before they
    write take the lock first: a read-only transaction in progress (the token lookup) is
    ended, and the next one begins with a write, which waits up to the busy timeout.
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    if session.in_transaction() and not (session.new or session.dirty or session.deleted):
        session.rollback()
    session.execute(text("UPDATE plants SET id = id WHERE 0 = 1"))


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory for read-only (GET) requests.

    On PostgreSQL these run in autocommit: a read is one or two SELECTs, and the BEGIN before
    them and the ROLLBACK when the connection returns to the pool are two more round trips to
    the server, each a context switch that a loaded machine makes costly (measured: median
    of a filtered version page 23-31 ms -> 13-18 ms in-process under load). On SQLite they
    begin DEFERRED (a WAL snapshot: readers never wait for the writer).
    """
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    factory = make_session_factory(engine)
    event.listen(factory, "before_flush", _refuse_writes)
    return factory


def _refuse_writes(session: Session, _context: Any, _instances: Any) -> None:
    # Autocommit has no transaction to roll back: a read route that starts writing ORM rows
    # must fail at once (in tests), not half-write on PostgreSQL.
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("a GET/HEAD request tried to write; writes belong to other methods")


@contextmanager
def managed_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session that commits on success, rolls back on error and always closes.

    For jobs, the CLI and flows; request handlers get theirs from :mod:`hub.deps` and
    their service functions commit explicitly.
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


def commit_or_conflict(session: Session, *, detail: str) -> None:
    """Commit, turning a unique/foreign-key violation into a :class:`Conflict`.

    Parameters
    ----------
    session
        The session of the use case being completed.
    detail
        The public message if the database refuses the write.

    Raises
    ------
    Conflict
        When the database reports an integrity error (the session is rolled back).
    """
    from sqlalchemy.exc import IntegrityError

    from federation.errors import Conflict

    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(detail, diagnostic=str(exc.orig)) from exc
