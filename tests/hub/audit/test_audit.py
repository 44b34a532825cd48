"""The audit chain: every domain appends, concurrent writers never fork it, tampering is named."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from federation.hub_client import HubClient
from federation.schemas.auth import Role, UserCreate
from hub.audit import chain
from hub.audit import service as audit_service
from hub.audit.models import AuditEntry
from hub.audit.sealer import Sealer
from hub.cli import app as hub_cli
from hub.config import HubSettings
from hub.db import make_engine, make_session_factory
from tests.hub import factories
from tests.hub.audit import tamper
from tests.hub.fixtures import Tokens, auth


def _fill(app: FastAPI, n: int) -> str:
    with app.state.session_factory() as session:
        for i in range(n):
            audit_service.append(
                session=session,
                actor="test",
                action="alias.set",
                subject=f"alias/p/m/{i}",
                before={"version_id": i},
                after={"version_id": i + 1, "note": "é ✓"},
                reason="because" if i % 2 else None,
                flags=["break_glass"] if i == 3 else (),
            )
        session.commit()
        return audit_service.head(session=session)[1]


def test_every_domain_appends_in_its_own_transaction(
    client: TestClient, admin_hub: HubClient, tokens: Tokens, app: FastAPI
) -> None:
    # Execute: one call per audited use case.
    h = auth(tokens.admin)
    with app.state.session_factory() as session:
        factories.model(session)
        recipe = factories.recipe(session, publish=False)
    assert client.post(f"/api/v1/recipes/{recipe.id}/publish", headers=h).status_code == 200
    blob = b"audited"
    digest = hashlib.sha256(blob).hexdigest()
    client.put(f"/api/v1/artifacts/sha256/{digest}", content=blob, headers=h)
    version = client.post(
        "/api/v1/versions",
        json={"model": "turbofan-rul", "version": "1.0", "artifact_digest": digest},
        headers=h,
    ).json()
    alias = "/api/v1/plants/fd001/aliases/turbofan-rul/challenger"  # champion: promotions
    client.put(alias, json={"version_id": version["id"]}, headers=h)
    client.put(alias, json={"version_id": version["id"]}, headers=h)  # no change: no entry
    client.delete(alias, headers=h)
    user = admin_hub.create_user(UserCreate(username="ann", printed_name="Ann", role=Role.ADMIN))
    minted = admin_hub.create_token(Role.ADMIN, username="ann")
    admin_hub.revoke_token(minted.id)
    campaign = client.post(
        "/api/v1/campaigns",
        json={
            "model": "turbofan-rul",
            "parent_version_id": version["id"],
            "recipe_id": recipe.id,
            "plants": ["fd001", "fd002"],
        },
        headers=h,
    )

    # Assert
    entries = list(HubClient(client=client, token=tokens.executive).iter_audit())
    actions = [e.action for e in entries]
    expected = [
        "plant.enroll",
        "plant.enroll",
        "token.create",
        "token.create",
        "token.create",
        "token.create",
        "recipe.publish",
        "artifact.upload",
        "version.create",
        "alias.set",
        "alias.delete",
        "user.create",
        "token.create",
        "token.revoke",
    ]
    assert actions[: len(expected)] == expected
    if campaign.status_code == 201:
        assert actions[len(expected) :] == ["campaign.start"]
        cid = campaign.json()["id"]
        client.post(f"/api/v1/campaigns/{cid}/cancel", headers=h)
        last = admin_hub.list_audit(action="campaign.cancel").items
        assert [e.subject for e in last] == [f"campaign/{cid}"]
    sets = admin_hub.list_audit(subject="alias/fd001/turbofan-rul/challenger").items
    assert [(e.action, e.before, e.after) for e in sets] == [
        ("alias.set", None, {"version_id": version["id"]}),
        ("alias.delete", {"version_id": version["id"]}, None),
    ]
    assert entries[11].after == {
        "username": "ann",
        "printed_name": "Ann",
        "role": "admin",
        "plant_id": None,
    }
    assert entries[11].subject == f"user/{user.id}"
    assert all(e.actor == "admin:token-1" for e in entries[6:])
    with app.state.session_factory() as session:
        assert audit_service.verify(session=session).ok


def test_listing_filters_pages_and_refuses_bad_times(
    client: TestClient, admin_hub: HubClient, tokens: Tokens, app: FastAPI
) -> None:
    _fill(app, 7)
    page = admin_hub.list_audit(action="alias.set", page_size=3)
    rest = list(admin_hub.iter_audit(action="alias.set", page_size=3))
    future = admin_hub.list_audit(since="2999-01-01T00:00:00Z").items
    past = admin_hub.list_audit(until="2000-01-01").items
    bad = client.get("/api/v1/audit?since=yesterday", headers=auth(tokens.admin))
    by_actor = admin_hub.list_audit(actor="test").items
    assert [e.seq for e in page.items] == [7, 8, 9] and page.next_page_token
    assert len(rest) == 7 and future == [] and past == [] and len(by_actor) == 13
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_input"
    assert [e.flags for e in rest if e.flags] == [["break_glass"]]


def test_append_is_part_of_the_callers_transaction(app: FastAPI, client: TestClient) -> None:
    _fill(app, 2)
    with app.state.session_factory() as session:
        audit_service.append(session=session, actor="t", action="rollback", subject="x")
        session.rollback()
        assert audit_service.head(session=session)[0] == 2
        with pytest.raises(ValueError):
            audit_service.append(session=session, actor="t", action="Bad Action", subject="x")
        with pytest.raises(ValueError):
            audit_service.append(
                session=session,
                actor="t",
                action="rollback",
                subject="x",
                after={"v": float("nan")},
            )


def test_concurrent_writers_make_one_unbroken_chain(
    app: FastAPI, client: TestClient, hub_settings: HubSettings
) -> None:
    # Prepare: 8 threads, each with its own engine connection, appending in transactions.
    errors: list[BaseException] = []
    per_thread = 12
    # A long busy timeout: a loaded CI machine can keep a SQLite writer waiting seconds.
    engine = make_engine(hub_settings.model_copy(update={"sqlite_busy_timeout_ms": 60_000}))
    factory = make_session_factory(engine)

    def writer(n: int) -> None:
        try:
            for i in range(per_thread):
                with factory() as session:
                    audit_service.append(
                        session=session,
                        actor=f"w{n}",
                        action="version.create",
                        subject=f"version/{n}-{i}",
                    )
                    session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    writing = threading.Event()
    sealed: list[int] = []

    def sealer() -> None:  # two sealers racing the writers and each other (PostgreSQL)
        while writing.is_set():
            sealed.append(audit_service.seal(bind=engine))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    sealers = [threading.Thread(target=sealer) for _ in range(2)]

    # Execute
    writing.set()
    for t in threads + sealers:
        t.start()
    for t in threads:
        t.join()
    writing.clear()
    for t in sealers:
        t.join()

    # Assert
    engine.dispose()
    assert errors == []
    with app.state.session_factory() as session:
        audit_service.head(session=session)  # seals what the racing sealers left
        assert audit_service.unsealed(session=session) == 0
        seqs = list(session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
        prevs = list(session.scalars(select(AuditEntry.prev_hash)))
        result = audit_service.verify(session=session)
    assert seqs == list(range(1, 8 * per_thread + 1))
    assert len(set(prevs)) == len(prevs), "two entries share a predecessor: the chain forked"
    assert result.ok and result.entries == 8 * per_thread


@pytest.mark.parametrize("case", sorted(tamper.CASES))
def test_every_tampering_is_detected_and_named(
    case: str, app: FastAPI, client: TestClient, hub_settings: HubSettings
) -> None:
    # Prepare: a chain of 12 entries and its head, recorded before the attack.
    head = _fill(app, 12)
    attack, kind, _ = tamper.CASES[case]
    engine = make_engine(hub_settings)

    # Execute
    with engine.begin() as conn:
        attack(conn, 6)
    engine.dispose()
    with app.state.session_factory() as session:
        result = audit_service.verify(session=session, expect_head=head)
        without_head = audit_service.verify(session=session)

    # Assert
    assert not result.ok
    assert (result.kind, result.seq) == (kind, 6), result.problem
    assert result.problem is not None and "6" in result.problem
    assert without_head.ok == (case == "truncate")


def test_cli_verify_and_export(
    app: FastAPI, client: TestClient, hub_settings: HubSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILLWRIGHT_HUB_DATABASE_URL", hub_settings.database_url)
    head = _fill(app, 5)
    runner = CliRunner()
    good = runner.invoke(hub_cli, ["audit", "verify", "--local", "--expect-head", head])
    exported = runner.invoke(
        hub_cli,
        ["audit", "export", "--local", "--since", "2000-01-01T00:00:00Z", "--format", "jsonl"],
    )
    lines = [json.loads(x) for x in exported.output.splitlines()]
    engine = make_engine(hub_settings)
    with engine.begin() as conn:
        tamper.unguard(conn)
        conn.execute(text("UPDATE audit_entries SET subject = 'x' WHERE seq = 2"))
    engine.dispose()
    bad = runner.invoke(hub_cli, ["audit", "verify", "--local", "--format", "json"])
    assert good.exit_code == 0 and head in good.output and "5 entries" in good.output
    assert [x["seq"] for x in lines] == [1, 2, 3, 4, 5]
    # An export carries everything needed to recompute the chain elsewhere.
    rows: list[Any] = [
        (
            x["seq"],
            x["at"],
            x["actor"],
            x["action"],
            x["subject"],
            chain.document_text(x["before"]),
            chain.document_text(x["after"]),
            x["reason"],
            chain.flags_text(x["flags"]),
            x["prev_hash"],
            x["entry_hash"],
        )
        for x in lines
    ]
    assert chain.verify(rows, expect_head=head).ok
    assert bad.exit_code == 1
    assert json.loads(bad.output)["seq"] == 2 and json.loads(bad.output)["kind"] == "edited"


def test_the_table_refuses_updates_and_deletes(
    app: FastAPI, client: TestClient, hub_settings: HubSettings
) -> None:
    # Prepare: two entries on the chain.
    _fill(app, 2)
    engine = make_engine(hub_settings)
    statements = [
        "UPDATE audit_entries SET reason = 'forged' WHERE seq = 1",
        "DELETE FROM audit_entries WHERE seq = 2",
    ]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_entries")

    # Execute
    refused = []
    for statement in statements:
        with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
            conn.execute(text(statement))
        refused.append(str(caught.value.orig))
    engine.dispose()

    # Assert: each refused by the append-only trigger, and the chain untouched.
    assert len(refused) == len(statements)
    assert all("append-only" in message for message in refused), refused
    with app.state.session_factory() as session:
        result = audit_service.verify(session=session)
    assert result.ok and result.entries == 2


def test_postgres_entries_wait_unchained_until_sealed(
    app: FastAPI, client: TestClient, hub_settings: HubSettings
) -> None:
    # Prepare: writers commit entries on their own engine (no sealer thread sees them).
    if not hub_settings.database_url.startswith("postgresql"):
        _fill(app, 3)  # SQLite chains at once: nothing is ever pending
        with app.state.session_factory() as session:
            assert audit_service.unsealed(session=session) == 0
        assert audit_service.seal(bind=app.state.engine) == 0
        return
    engine = make_engine(hub_settings)
    factory = make_session_factory(engine)
    first, second = factory(), factory()
    for session, subject in ((first, "early-id"), (second, "late-id")):
        audit_service.append(session=session, actor="t", action="rollback", subject=subject)
    second.commit()  # the higher id commits first ...
    with factory() as session:
        waiting = audit_service.unsealed(session=session)
        chained = session.scalar(select(func.count()).select_from(AuditEntry))

    # Execute: seal what is committed, then the transaction with the lower id commits.
    sealed_first = audit_service.seal(bind=engine)
    first.commit()
    sealed_then = audit_service.seal(bind=engine)
    first.close(), second.close()
    with factory() as session:
        result = audit_service.verify(session=session)
        subjects = list(session.scalars(select(AuditEntry.subject).order_by(AuditEntry.seq)))
        left = audit_service.unsealed(session=session)
    engine.dispose()

    # Assert: chained in the order sealed, one unbroken chain, nothing left over.
    assert (waiting, chained) == (1, 0)
    assert (sealed_first, sealed_then, left) == (1, 1, 0)
    assert subjects == ["late-id", "early-id"]
    assert result.ok and result.entries == 2


def test_cli_verifies_and_exports_through_the_api(
    app: FastAPI,
    client: TestClient,
    tokens: Tokens,
    hub_settings: HubSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: the commands' HubClient talks to the in-process hub; five more entries.
    import federation.hub_client

    def in_process(url: str, *, token: str | None = None) -> HubClient:
        return HubClient(client=client, token=token, retries=0)

    monkeypatch.setattr(federation.hub_client, "HubClient", in_process)
    monkeypatch.setenv("MILLWRIGHT_HUB_DATABASE_URL", hub_settings.database_url)
    head = _fill(app, 5)
    runner = CliRunner()

    def run(*args: str, token: str = tokens.executive) -> Any:
        return runner.invoke(hub_cli, ["audit", *args, "--token", token])

    # Execute
    good = run("verify", "--expect-head", head, "--format", "json")
    remote = run("export", "--since", "2000-01-01T00:00:00Z")
    local = run("export", "--local", "--since", "2000-01-01T00:00:00Z")
    denied = run("verify", token=tokens.data_scientist)
    engine = make_engine(hub_settings)
    with engine.begin() as conn:
        tamper.delete(conn, 3)
    engine.dispose()
    broken = run("verify")
    bad_head = client.get("/api/v1/audit/verify?expect_head=not-a-hash", headers=auth(tokens.admin))

    # Assert
    verdict = json.loads(good.output)
    assert good.exit_code == 0 and verdict["ok"] and verdict["head_hash"] == head
    n = verdict["entries"]  # the fixtures' tokens and plants, then the five
    assert n >= 5 and (verdict["head_seq"], verdict["unsealed"]) == (n, 0)
    assert remote.exit_code == 0 and remote.output == local.output
    assert [json.loads(x)["seq"] for x in remote.output.splitlines()] == list(range(1, n + 1))
    assert denied.exit_code == 1 and "forbidden" in denied.output
    assert broken.exit_code == 1 and "BROKEN (deleted) at entry 3" in broken.output
    assert bad_head.status_code == 422


def test_the_sealer_thread_chains_a_commit_when_nudged(hub_settings: HubSettings) -> None:
    # Prepare: a sealer that would look on its own only after a minute; a commit nudges it.
    engine = make_engine(hub_settings)
    factory = make_session_factory(engine)
    sealer = Sealer(lambda: engine, interval=60)
    sealer.attach(factory)
    sealer.start()

    # Execute: commit an entry, then only count what is pending (that seals nothing).
    with factory() as session:
        audit_service.append(session=session, actor="t", action="rollback", subject="nudge")
        session.commit()
    deadline = time.monotonic() + 10
    with factory() as session:
        while (left := audit_service.unsealed(session=session)) and time.monotonic() < deadline:
            session.rollback()
            time.sleep(0.01)
        chained = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.subject == "nudge")
        )
    sealer.stop()
    engine.dispose()

    # Assert: chained by the nudged pass, and the thread has ended.
    assert (left, chained) == (0, 1)
    assert sealer._thread is not None and not sealer._thread.is_alive()
