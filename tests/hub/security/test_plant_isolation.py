"""Report and event ids are unique per plant: one plant cannot take over another's id."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from federation.schemas.auth import Role, TokenCreate
from hub import migrations
from hub.auth import service as auth_service
from hub.config import HubSettings
from tests.hub.fixtures import PG_ENV, Tokens, auth
from tests.hub.metrics.reports import body, report

API = "/api/v1"


def _fd002_token(app: FastAPI) -> str:
    with app.state.session_factory() as session:
        return auth_service.create_token(
            session=session, token_in=TokenCreate(role=Role.PLANT, plant_id="fd002"), actor="t"
        ).token


def test_a_plant_posting_under_anothers_pending_report_id_cannot_hide_its_report(
    client: TestClient, app: FastAPI, tokens: Tokens
) -> None:
    # Prepare: p1's report is still pending on its node; p2 learned (or guessed) its id.
    mine = report("fd001", rmse=18.0)
    forged = body(report("fd002", rmse=99.0))
    forged["report_id"] = str(mine.report_id)
    p2 = _fd002_token(app)

    # Execute: p2 posts first, then p1's node delivers.
    squat = client.post(f"{API}/plants/fd002/metrics-reports", json=forged, headers=auth(p2))
    delivered = client.post(
        f"{API}/plants/fd001/metrics-reports", json=body(mine), headers=auth(tokens.plant)
    )

    # Assert: p1's report is stored as new (201, not a 409 "already delivered"), and the
    # hub serves p1's own content under p1's id.
    assert squat.status_code == 201, squat.text
    assert delivered.status_code == 201, delivered.text
    assert delivered.json()["duplicate"] is False
    stored = client.get(
        f"{API}/plants/fd001/metrics-reports/{mine.report_id}", headers=auth(tokens.executive)
    )
    assert stored.status_code == 200 and stored.json() == body(mine)
    theirs = client.get(
        f"{API}/plants/fd002/metrics-reports/{mine.report_id}", headers=auth(tokens.executive)
    )
    assert theirs.json()["plant_id"] == "fd002"


def test_a_plant_reusing_anothers_event_id_neither_conflicts_nor_deduplicates(
    client: TestClient, app: FastAPI, tokens: Tokens
) -> None:
    event = {"id": "e1", "kind": "drift_alert", "occurred_at": "2026-11-23T10:00:00Z"}
    p2 = _fd002_token(app)
    squat = client.post(
        f"{API}/plants/fd002/events",
        json={"events": [{**event, "payload": {"psi": 9}}]},
        headers=auth(p2),
    )
    mine = client.post(
        f"{API}/plants/fd001/events",
        json={"events": [{**event, "payload": {"psi": 0.3}}]},
        headers=auth(tokens.plant),
    )
    listed = client.get(f"{API}/plants/fd001/events", headers=auth(tokens.executive)).json()
    assert squat.status_code == 200 and mine.status_code == 200, mine.text
    assert mine.json() == {"accepted": 1, "duplicates": []}
    assert [(e["id"], e["payload"]) for e in listed["items"]] == [("e1", {"psi": 0.3})]


# --- the migration keeps existing rows (SQLite and PostgreSQL) ---------------------------

_PLANT = (
    "INSERT INTO plants (id, name, site, lines, hardware_profile, created_at, created_by) "
    "VALUES (:id, :id, 's', '[]', '{}', :t, 'm')"
)


def _pg_database() -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    base = HubSettings(database_url=base).database_url
    name = f"mw_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mig.db'}"
    else:
        yield from _pg_database()


def test_per_plant_id_migration_keeps_rows_and_frees_ids_across_plants(empty_db: str) -> None:
    # Prepare: a database at the previous head, holding a report and an event.
    settings = HubSettings(database_url=empty_db)
    migrations.upgrade(settings, "gov_promotions_0001")
    engine = sa.create_engine(settings.database_url)
    t = "2026-11-01 00:00:00"
    report_row = (
        "INSERT INTO metrics_reports (report_id, plant_id, model_name, model_version, "
        "window_start, window_end, content_sha256, revision, document, observations, "
        "received_at, received_by) VALUES (:rid, :p, 'm', '1', :t, :t, 'x', 0, '{}', 0, :t, 'a')"
    )
    event_row = (
        "INSERT INTO plant_events (event_id, plant_id, kind, occurred_at, payload, received_at) "
        "VALUES (:eid, :p, 'k', :t, '{}', :t)"
    )
    with engine.begin() as conn:
        for p in ("p1", "p2"):
            conn.execute(text(_PLANT), {"id": p, "t": t})
        conn.execute(text(report_row), {"rid": "r-1", "p": "p1", "t": t})
        conn.execute(text(event_row), {"eid": "e-1", "p": "p1", "t": t})
        with pytest.raises(sa.exc.IntegrityError):  # before: ids are hub-wide
            with conn.begin_nested():
                conn.execute(text(report_row), {"rid": "r-1", "p": "p2", "t": t})

    # Execute
    migrations.upgrade(settings)

    # Assert: the rows survive; another plant may now use the id, the same plant may not.
    with engine.begin() as conn:
        assert conn.execute(text("SELECT plant_id, report_id FROM metrics_reports")).all() == [
            ("p1", "r-1")
        ]
        assert conn.execute(text("SELECT plant_id, event_id FROM plant_events")).all() == [
            ("p1", "e-1")
        ]
        conn.execute(text(report_row), {"rid": "r-1", "p": "p2", "t": t})
        conn.execute(text(event_row), {"eid": "e-1", "p": "p2", "t": t})
        for stmt, params in ((report_row, {"rid": "r-1"}), (event_row, {"eid": "e-1"})):
            with pytest.raises(sa.exc.IntegrityError):
                with conn.begin_nested():
                    conn.execute(text(stmt), {**params, "p": "p1", "t": t})
    engine.dispose()
