"""Read-only requests get sessions that cannot write (and skip BEGIN/ROLLBACK on PostgreSQL)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

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
    read, write = app.state.read_session_factory, app.state.session_factory
    monkeypatch.setattr(app.state, "read_session_factory", lambda: used.append("read") or read())
    monkeypatch.setattr(app.state, "session_factory", lambda: used.append("write") or write())
    h = auth(tokens.admin)

    assert client.get("/api/v1/plants", headers=h).status_code == 200
    got = list(used)
    used.clear()
    created = client.post("/api/v1/plants", json={"id": "p-w", "name": "W", "site": "s"}, headers=h)

    assert created.status_code == 201, created.text
    assert got and set(got) == {"read"}
    assert used and set(used) == {"write"}
