"""Hub fixtures (a pytest plugin loaded by tests/conftest.py): SQLite and PostgreSQL backends.

SQLite tests copy a pre-migrated file; PostgreSQL tests share one migrated database
created for this session (never the CI database itself) and truncate it between tests.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from federation.hub_client import HubClient
from federation.schemas.auth import Role, TokenCreate
from hub import migrations
from hub.audit import service as audit_service
from hub.auth import service as auth_service
from hub.auth.service import PrincipalCache
from hub.config import HubSettings
from hub.db import (
    make_engine,
    make_read_session_factory,
    make_request_session_factory,
    make_session_factory,
)
from hub.main import create_app
from hub.registry.artifacts import LocalArtifactStore
from hub.tables import metadata
from tests.hub import factories

PG_ENV = "MILLWRIGHT_TEST_POSTGRES_URL"
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"{PG_ENV} is not set"),
        ],
    ),
]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hub-template") / "hub.db"
    migrations.upgrade(HubSettings(database_url=f"sqlite:///{path}"))
    return path


def _normalise(url: str) -> str:
    return HubSettings(database_url=url).database_url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    base = _normalise(base)
    name = f"mw_hub_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    migrations.upgrade(HubSettings(database_url=url))
    try:
        yield url
    finally:
        for engine in _PG_ENGINES.values():
            engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_PG_ENGINES: dict[str, Any] = {}


def _truncate(url: str) -> None:
    # DELETE plus sequence restarts is several times faster than TRUNCATE on small tables.
    engine = _PG_ENGINES.get(url) or _PG_ENGINES.setdefault(url, create_engine(url))
    with engine.begin() as conn:
        # Wait for a sealer still chaining the last test's entries, then clear the
        # append-only audit table as its owner may (triggers off for this transaction).
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": audit_service.PG_LOCK_KEY})
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
        for (seq,) in conn.execute(
            text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
        ):
            conn.execute(text(f'ALTER SEQUENCE "{seq}" RESTART'))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hub_settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> HubSettings:
    artifacts = tmp_path / "artifacts"
    if backend == "sqlite":
        db = tmp_path / "hub.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), db)
        url = f"sqlite:///{db}"
    else:
        url = request.getfixturevalue("postgres_url")
        _truncate(url)
    return HubSettings(
        database_url=url,
        artifact_root=artifacts,
        max_upload_bytes=64 * 1024,
        log_json=True,
        fleet_worker=False,
    )


@pytest.fixture(scope="session")
def _clients() -> Iterator[dict[str, tuple[FastAPI, TestClient]]]:
    # FastAPI analyses every route's dependencies on an app's first request (~0.2 s), so
    # each backend gets one app and one TestClient per session, rebound to each test's
    # database and artifact store by `_bind`.
    cache: dict[str, tuple[FastAPI, TestClient]] = {}
    yield cache
    for app, test_client in cache.values():
        test_client.__exit__(None, None, None)
        app.state.engine.dispose()


def _bind(app: FastAPI, settings: HubSettings) -> None:
    app.state.engine.dispose()
    app.state.settings = settings
    app.state.engine = make_engine(settings)
    app.state.session_factory = make_session_factory(app.state.engine)
    app.state.read_session_factory = make_read_session_factory(app.state.engine)
    app.state.request_session_factory = make_request_session_factory(app.state.engine)
    app.state.artifact_store = LocalArtifactStore(settings.artifact_root)
    app.state.principal_cache = PrincipalCache(settings.auth_cache_seconds)
    if (sealer := getattr(app.state, "audit_sealer", None)) is not None:  # PostgreSQL apps
        sealer.attach(app.state.session_factory)
        sealer.attach(app.state.request_session_factory)


@pytest.fixture
def app(
    hub_settings: HubSettings, backend: str, _clients: dict[str, tuple[FastAPI, TestClient]]
) -> FastAPI:
    if backend not in _clients:
        fresh = create_app(hub_settings)
        test_client = TestClient(fresh)
        test_client.__enter__()
        _clients[backend] = (fresh, test_client)
    app = _clients[backend][0]
    _bind(app, hub_settings)
    return app


@pytest.fixture
def client(
    app: FastAPI, backend: str, _clients: dict[str, tuple[FastAPI, TestClient]]
) -> Iterator[TestClient]:
    yield _clients[backend][1]
    app.state.engine.dispose()


@dataclass
class Tokens:
    """One secret per role; the plant token is bound to plant ``fd001``."""

    admin: str
    data_scientist: str
    executive: str
    plant: str

    def for_role(self, role: str) -> str:
        return str(getattr(self, role))


@pytest.fixture
def tokens(client: TestClient, app: FastAPI) -> Tokens:
    factory = app.state.session_factory
    with factory() as session:
        factories.plant(session, "fd001")
        factories.plant(session, "fd002")
        made = {
            role.value: auth_service.create_token(
                session=session,
                token_in=TokenCreate(role=role, plant_id="fd001" if role == Role.PLANT else None),
                actor="test",
            ).token
            for role in Role
        }
    return Tokens(**made)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin_hub(client: TestClient, tokens: Tokens) -> HubClient:
    return HubClient(client=client, token=tokens.admin, retries=0)


@pytest.fixture
def plant_hub(client: TestClient, tokens: Tokens) -> HubClient:
    return HubClient(client=client, token=tokens.plant, retries=0)


def snapshot(settings: HubSettings) -> dict[str, Any]:
    """Every row of every table plus every file of the artifact store (for 'nothing changed')."""
    engine = make_engine(settings)
    audit_service.seal(bind=engine)  # pending entries (PostgreSQL) onto the chain first
    rows: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows[table.name] = sorted(repr(tuple(r)) for r in conn.execute(table.select()))
    engine.dispose()
    files = {}
    root = Path(settings.artifact_root)
    if root.exists():
        for path in sorted(root.rglob("*")):
            if path.is_file():
                files[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"rows": rows, "files": files}


@pytest.fixture
def session_factory(app: FastAPI, client: TestClient) -> Any:
    return app.state.session_factory


__all__ = ["Tokens", "auth", "make_session_factory", "snapshot"]
