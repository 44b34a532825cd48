"""A node offline for days catches up exactly once, and its outbox stays within its budget."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from federation.hub_client import HubClient
from federation.schemas.auth import Role, TokenCreate
from federation.schemas.registry import PlantCreate
from hub import migrations
from hub.auth import service as auth_service
from hub.config import HubSettings
from hub.main import create_app
from plant_node.db import make_engine, make_session_factory
from plant_node.outbox.deliverers import HubClientDeliverer
from plant_node.outbox.jobs import BUDGET_ALERT_KIND
from tests.plant_node.outbox import procs
from tests.plant_node.outbox.offline import Cadence, drain, exactly_once, fill_offline, hub_holdings

PLANT = "plant-off"
# scaled down from the benchmark's 20 readings/s on two lines, so the test takes seconds
CADENCE = Cadence(lines=1, readings_per_s=2.0, feedback_per_h=2, revise_after_h=12)
START = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=3)


@dataclass
class Hub:
    db: Path
    client: HubClient


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    settings = HubSettings(database_url=f"sqlite:///{tmp_path / 'hub.db'}",
                           artifact_root=tmp_path / "artifacts", access_log=False)  # fmt: skip
    migrations.upgrade(settings)
    app = create_app(settings)
    with TestClient(app, base_url="http://hub") as http:
        with app.state.session_factory() as session:
            admin = auth_service.create_token(
                session=session, token_in=TokenCreate(role=Role.ADMIN), actor="t"
            ).token
        HubClient(client=http, token=admin).create_plant(
            PlantCreate(id=PLANT, name="Offline plant", site="S", lines=["l1"])
        )
        with app.state.session_factory() as session:
            plant = auth_service.create_token(
                session=session, token_in=TokenCreate(role=Role.PLANT, plant_id=PLANT), actor="t"
            ).token
        yield Hub(tmp_path / "hub.db", HubClient(client=http, token=plant, retries=0))


@pytest.fixture
def node(node_settings: object) -> Iterator[tuple[sessionmaker[Session], Path]]:
    db_file = Path(node_settings.db_url.removeprefix("sqlite:///"))  # type: ignore[attr-defined]
    engine = make_engine(f"sqlite:///{db_file}")
    yield make_session_factory(engine), db_file
    engine.dispose()


def _dead_hub() -> HubClientDeliverer:
    return HubClientDeliverer(
        HubClient(f"http://127.0.0.1:{procs.free_port()}", retries=0, timeout=1), PLANT
    )


def test_two_days_offline_then_everything_arrives_exactly_once(
    hub: Hub, node: tuple[sessionmaker[Session], Path]
) -> None:
    # Prepare: two generated days of reports, revisions, feedback, alerts and rollouts.
    factory, db_file = node
    made = fill_offline(factory, db_file, plant=PLANT, days=2, cadence=CADENCE,
                        dead_hub=_dead_hub(), budget_bytes=256_000_000, start=START)  # fmt: skip
    assert made.kept == made.reports  # far under budget: nothing compacted
    assert all(not b.reports_dropped and not b.reports_thinned for b in made.budget_reports)

    # Execute: the link comes back; deliver once, then once more (a crash-restart re-send).
    drain(factory, HubClientDeliverer(hub.client, PLANT))
    first = hub_holdings(hub.db, PLANT)
    drain(factory, HubClientDeliverer(hub.client, PLANT))

    # Assert: every report at its newest revision and every event, once each.
    figures = exactly_once(made, hub_holdings(hub.db, PLANT))
    assert figures["delivered_exactly_once"], figures
    assert figures["reports_made"] == 48 and figures["events_made"] == 48 * 2 + 8 + 2
    assert set(hub_holdings(hub.db, PLANT).reports.values()) == {0, 1}
    assert first == hub_holdings(hub.db, PLANT)


def test_at_the_budget_metrics_are_compacted_and_audit_records_are_never_dropped(
    hub: Hub, node: tuple[sessionmaker[Session], Path]
) -> None:
    # Prepare: a budget of a third of what a day offline needs.
    factory, db_file = node
    free = fill_offline(factory, db_file, plant=PLANT, days=1, cadence=CADENCE,
                        dead_hub=_dead_hub(), budget_bytes=10**9, start=START)  # fmt: skip
    budget = free.peak_accounted_bytes // 3
    factory().close()
    with factory() as session:
        from sqlalchemy import delete

        from plant_node.outbox.models import OutboxItem, OutboxStream

        session.execute(delete(OutboxItem))
        session.execute(delete(OutboxStream))
        session.commit()

    # Execute: the same day under the small budget, then the link comes back.
    made = fill_offline(factory, db_file, plant=PLANT, days=1, cadence=CADENCE,
                        dead_hub=_dead_hub(), budget_bytes=budget, start=START)  # fmt: skip
    drain(factory, HubClientDeliverer(hub.client, PLANT))

    # Assert: compaction thinned then dropped unsent reports, stayed within budget after each
    # pass, said so to the hub, and every alert, feedback and rollout record arrived once.
    thinned = sum(b.reports_thinned for b in made.budget_reports)
    dropped = sum(b.reports_dropped for b in made.budget_reports)
    superseded = sum(b.superseded_dropped for b in made.budget_reports)
    assert thinned > 0 and dropped + superseded > 0
    assert all(b.size_after <= budget for b in made.budget_reports)
    figures = exactly_once(made, hub_holdings(hub.db, PLANT))
    assert figures["delivered_exactly_once"], figures
    assert figures["reports_dropped_by_budget"] == len(made.reports) - len(made.kept)
    held = hub_holdings(hub.db, PLANT)
    audit = [e for e in made.events if not e.startswith("feedback")]
    assert all(held.events[e] == 1 for e in made.events) and audit
    assert sum(1 for e in free.events if e.startswith("feedback")) == sum(
        1 for e in made.events if e.startswith("feedback")
    )
    with hub.client._client as http:  # noqa: SLF001 - the budget alert reached the hub
        kinds = [e["kind"] for e in http.get(f"/api/v1/plants/{PLANT}/events",
                 headers=hub.client._headers).json()["items"]]  # noqa: SLF001  # fmt: skip
    assert BUDGET_ALERT_KIND in kinds


def test_audit_records_alone_past_the_budget_are_kept_and_flagged(
    node: tuple[sessionmaker[Session], Path],
) -> None:
    factory, db_file = node
    made = fill_offline(factory, db_file, plant=PLANT, days=0.25, cadence=CADENCE,
                        dead_hub=_dead_hub(), budget_bytes=2_000, start=START)  # fmt: skip
    last = made.budget_reports[-1]
    assert last.over_budget and last.audit_only and last.size_after > 2_000
    with factory() as session:
        from plant_node.outbox import service as outbox_service

        kept = {i.idempotency_key for i in outbox_service.list_items(session=session)}
    assert set(made.events) <= kept  # every alert, feedback and rollout record is still there
    # every unsent metrics report went first; the stream's head stays (it was sent, unacked:
    # the hub may hold it, so it is neither rewritten nor dropped)
    assert len(made.kept) <= 1 < len(made.reports)
