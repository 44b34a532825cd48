"""The demo's audit step: its tampering is caught and named, and its restore makes it whole."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from federation.demo.audit_steps import restore_entry, sqlite_path, tamper_entry
from hub import migrations
from hub.audit import service as audit_service
from hub.config import HubSettings
from hub.db import make_engine, make_session_factory


def test_tampered_row_is_named_and_restore_heals(tmp_path: Path) -> None:
    # Prepare: a migrated hub database with three alias changes on the chain.
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    settings = HubSettings(database_url=url)
    migrations.upgrade(settings)
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    with factory() as session:
        for version_id in (1, 2, 3):
            audit_service.append(
                session=session,
                actor="demo",
                action="alias.set",
                subject="alias/FD001/turbofan-rul/champion",
                after={"version_id": version_id},
            )
        audit_service.append(session=session, actor="demo", action="token.create", subject="t")
        session.commit()
    db = sqlite_path(url)
    assert db is not None and sqlite_path("postgresql+psycopg://x/y") is None

    # Execute
    seq, original, _ = tamper_entry(db)
    with factory() as session:
        broken = audit_service.verify(session=session)
    restore_entry(db, seq, original)
    with factory() as session:
        healed = audit_service.verify(session=session)
    engine.dispose()

    # Assert: the last alias.set (entry 3) is the one edited and named.
    assert seq == 3 and original == '{"version_id":3}'
    assert (broken.ok, broken.kind, broken.seq) == (False, "edited", 3)
    assert healed.ok and healed.entries == 4
    # The restore put the append-only trigger back as well.
    with sqlite3.connect(db) as conn, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_entries SET reason = 'x' WHERE seq = 1")
