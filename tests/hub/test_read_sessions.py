"""Read-only requests get sessions that cannot write (and skip BEGIN/ROLLBACK on PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from hub.config import HubSettings
from hub.db import make_engine, make_read_session_factory, make_request_session_factory
from hub.registry.models import Plant
from tests.hub.fixtures import Tokens, auth


def test_read_sessions_refuse_orm_writes(app: FastAPI, backend: str) -> None:
    with app.state.read_session_factory() as session:
        session.add(Plant(id="p-read", name="P", site="s", lines=[]))
        with pytest.raises(RuntimeError, match="GET/HEAD request tried to write"):
            session.flush()
    with app.state.read_session_factory() as session:
        session.execute(text("SELECT 1"))
        dbapi = session.connection().connection.dbapi_connection
        # PostgreSQL: autocommit, so no BEGIN before a read and no ROLLBACK after it
        autocommit = bool(getattr(dbapi, "autocommit", False))
    assert autocommit == (backend == "postgresql")


def test_get_routes_use_the_read_factory_and_writes_the_write_one(
    app: FastAPI, client: TestClient, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[str] = []
    read, write = app.state.read_session_factory, app.state.request_session_factory
    monkeypatch.setattr(app.state, "read_session_factory", lambda: used.append("read") or read())
    monkeypatch.setattr(
        app.state, "request_session_factory", lambda: used.append("write") or write()
    )
    h = auth(tokens.admin)

    assert client.get("/api/v1/plants", headers=h).status_code == 200
    got = list(used)
    used.clear()
    created = client.post("/api/v1/plants", json={"id": "p-w", "name": "W", "site": "s"}, headers=h)

    assert created.status_code == 201, created.text
    assert got and set(got) == {"read"}
    assert used and set(used) == {"write"}


def test_sqlite_write_requests_read_then_write_without_locked_errors(tmp_path: Path) -> None:
    """Eight threads each read, then write, 50 times: none meets "database is locked"."""
    settings = HubSettings(database_url=f"sqlite:///{tmp_path / 'hub.db'}")
    engine = make_engine(settings)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
    writes, reads = make_request_session_factory(engine), make_read_session_factory(engine)
    errors: list[str] = []

    def work(i: int) -> None:
        for _ in range(50):
            try:
                with writes() as session:
                    session.execute(text("SELECT count(*) FROM t")).scalar()
                    session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": i})
                    session.commit()
            except Exception as exc:  # noqa: BLE001 - counted, then asserted
                errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with reads() as session:
        rows = session.execute(text("SELECT count(*) FROM t")).scalar()
    engine.dispose()
    assert errors == []
    assert rows == 400


def test_sqlite_read_sessions_do_not_block_a_writer(tmp_path: Path) -> None:
    settings = HubSettings(
        database_url=f"sqlite:///{tmp_path / 'hub.db'}", sqlite_busy_timeout_ms=200
    )
    engine = make_engine(settings)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    reader = make_read_session_factory(engine)()
    reader.execute(text("SELECT count(*) FROM t")).scalar()  # a read transaction stays open
    with make_request_session_factory(engine)() as session:
        session.execute(text("INSERT INTO t DEFAULT VALUES"))
        session.commit()
    reader.close()
    engine.dispose()
