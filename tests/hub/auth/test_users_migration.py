"""The users migration gives every existing token one user of its own, and keeps it working."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hub import migrations
from hub.auth import service as auth_service
from hub.config import HubSettings
from hub.db import make_engine, make_session_factory
from tests.hub.fixtures import BACKENDS, PG_ENV


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    base = HubSettings(database_url=os.environ[PG_ENV]).database_url
    name = f"mw_mig_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_existing_tokens_migrate_to_one_user_each(empty_url: str) -> None:
    # Prepare: a database at the revision before users, holding three tokens.
    settings = HubSettings(database_url=empty_url)
    migrations.upgrade(settings, "0004")
    secrets = {"ops": "mw_old-admin", "": "mw_old-exec", "line 1": "mw_old-plant"}
    engine = make_engine(settings)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO plants (id, name, site, lines, hardware_profile,"
                " created_at, created_by) VALUES ('p1', 'P1', 's', '[]', '{}',"
                " '2026-11-30 10:00:00', 'test')"
            )
        )
        for (name, secret), (role, plant) in zip(
            secrets.items(), [("admin", None), ("executive", None), ("plant", "p1")], strict=True
        ):
            conn.execute(
                text(
                    "INSERT INTO api_tokens (token_hash, prefix, role, plant_id, name,"
                    " created_at, created_by) VALUES (:h, :p, :r, :pl, :n,"
                    " '2026-11-30 10:00:00', 'test')"
                ),
                {
                    "h": auth_service.hash_token(secret),
                    "p": secret[:10],
                    "r": role,
                    "pl": plant,
                    "n": name,
                },
            )
    engine.dispose()

    # Execute
    assert migrations.upgrade(settings) == migrations.head_revision()

    # Assert: one user per token, same role and plant, and every old token still works.
    engine = make_engine(settings)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT t.id, t.role, t.plant_id, u.username, u.printed_name, u.role, u.plant_id"
                " FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id"
            )
        ).all()
        users = conn.execute(text("SELECT count(*) FROM users")).scalar()
    assert users == 3 and len(rows) == 3
    for tid, role, plant, username, printed, user_role, user_plant in rows:
        assert username == f"token-{tid}" and (role, plant) == (user_role, user_plant)
        assert printed in {"ops", f"token {tid}", "line 1"}
    with make_session_factory(engine)() as session:
        who = [auth_service.authenticate(session=session, token=s) for s in secrets.values()]
    engine.dispose()
    assert [w.username for w in who] == [r[3] for r in rows]
    assert [w.printed_name for w in who] == ["ops", f"token {rows[1][0]}", "line 1"]
