"""Webhook events of fleet health: alert.raised / alert.cleared from metrics reports,
campaign.finished, node.stale / node.recovered (once per episode); unknown types refused."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from federation.schemas.campaigns import CampaignCreate, CampaignFailureCode, CampaignStatus
from federation.schemas.events import PlantEventCreate
from federation.schemas.metrics_report import AlertKindName, AlertSummary, MetricsReport
from federation.schemas.rollouts import WebhookEvent
from hub.alerts import service as alerts_service
from hub.campaigns import service as campaigns_service
from hub.liveness import service as liveness_service
from hub.registry import service as registry_service
from hub.rollouts import evidence
from hub.webhooks import service as webhooks_service
from tests.hub.fixtures import auth
from tests.hub.metrics.reports import report
from tests.hub.rollouts.conftest import Fleet

#: Nobody listens here: these tests read the queued deliveries, not what a receiver got.
NOWHERE = "http://127.0.0.1:9/hooks"
KEY = "performance:rmse"


def _alert(key: str = KEY, value: float = 31.0) -> AlertSummary:
    return AlertSummary(
        key=key,
        kind=AlertKindName.PERFORMANCE,
        since=dt.datetime(2026, 11, 1, 6, tzinfo=dt.UTC),
        value=value,
        reference_mean=18.0,
        sigmas=4.2,
        top_features=["s2"],
    )


def _report(day: int, *, raised: list[AlertSummary], open_keys: list[str] | None) -> MetricsReport:
    return report("fd001", day=day, alert_details=raised, open_alert_keys=open_keys)


def _queued(fleet: Fleet, webhook_id: int) -> list[tuple[str, dict[str, Any]]]:
    with fleet.app.state.session_factory() as session:
        rows = webhooks_service.list_deliveries(session=session, webhook_id=webhook_id)
        return [(r.event_type, dict(r.payload["data"])) for r in rows]


def test_alerts_raise_and_clear_once_per_episode(fleet: Fleet) -> None:
    # Prepare
    sub = fleet.admin.create_webhook(
        NOWHERE, [WebhookEvent.ALERT_RAISED, WebhookEvent.ALERT_CLEARED]
    )

    def send(r: MetricsReport) -> bool:
        return fleet.admin.submit_metrics_report("fd001", r, idempotency_key=uuid.uuid4().hex)\
            .duplicate  # fmt: skip

    # Execute: raised on day 1; a re-send (another key) and day 2 (still open) change nothing
    first = _report(1, raised=[_alert()], open_keys=[KEY])
    assert send(first) is False
    assert send(first) is True
    send(_report(2, raised=[], open_keys=[KEY]))
    after_raise = _queued(fleet, sub.id)
    # an older window (day 0) that lists the rule as raised and then gone is late news
    send(_report(0, raised=[_alert(value=40.0)], open_keys=[]))
    after_late = _queued(fleet, sub.id)
    send(_report(4, raised=[], open_keys=[]))
    after_clear = _queued(fleet, sub.id)
    # late news again: day 3 raising the rule after day 4 cleared it does not reopen it
    send(_report(3, raised=[_alert(value=33.0)], open_keys=[KEY]))
    after_late_raise = _queued(fleet, sub.id)
    # the next episode is raised again; a report that does not say which alerts are open (an
    # older node) clears nothing; then raised and cleared within one window gives both
    send(_report(5, raised=[_alert(value=35.0)], open_keys=[KEY]))
    send(_report(6, raised=[], open_keys=None))
    after_silent = _queued(fleet, sub.id)
    send(_report(7, raised=[], open_keys=[]))
    send(_report(8, raised=[_alert(value=36.0)], open_keys=[]))

    # Assert
    assert [t for t, _ in after_raise] == ["alert.raised"]
    data = after_raise[0][1]
    assert (data["plant_id"], data["model"], data["model_version"], data["key"]) == (
        "fd001", "turbofan-rul", "1.0", KEY,
    )  # fmt: skip
    assert (data["kind"], data["status"], data["value"], data["sigmas"]) == (
        "performance", "open", 31.0, 4.2,
    )  # fmt: skip
    assert data["raised_report_id"] == str(first.report_id)
    assert after_late == after_raise
    assert [t for t, _ in after_clear] == ["alert.raised", "alert.cleared"]
    cleared = after_clear[1][1]
    assert cleared["status"] == "cleared"
    day4_end = _report(4, raised=[], open_keys=[]).window_end.isoformat()
    assert cleared["cleared_window_end"] == day4_end
    assert after_late_raise == after_clear
    assert [t for t, _ in after_silent] == ["alert.raised", "alert.cleared", "alert.raised"]
    assert after_silent[2][1]["status"] == "open" and after_silent[2][1]["value"] == 35.0
    events = [(t, d.get("value")) for t, d in _queued(fleet, sub.id)]
    assert events == [
        ("alert.raised", 31.0), ("alert.cleared", 31.0), ("alert.raised", 35.0),
        ("alert.cleared", 35.0), ("alert.raised", 36.0), ("alert.cleared", 36.0),
    ]  # fmt: skip
    with fleet.app.state.session_factory() as session:
        row = alerts_service.get_alert(
            session=session,
            plant_id="fd001",
            model_name="turbofan-rul",
            model_version="1.0",
            key=KEY,
        )
        assert row is not None and row.status == alerts_service.CLEARED
        assert alerts_service.open_alerts(session=session) == []


def test_a_batch_applies_its_reports_in_window_order(fleet: Fleet) -> None:
    # Prepare
    sub = fleet.admin.create_webhook(
        NOWHERE, [WebhookEvent.ALERT_RAISED, WebhookEvent.ALERT_CLEARED]
    )
    other = "drift:s2:js"
    later = _report(8, raised=[], open_keys=[other])
    earlier = _report(7, raised=[_alert(), _alert(other)], open_keys=[KEY, other])
    body = {"reports": [later.model_dump(mode="json"), earlier.model_dump(mode="json")]}

    # Execute: the later window comes first in the batch
    response = fleet.client.post(
        "/api/v1/plants/fd001/metrics-reports/batch", json=body, headers=auth(fleet.tokens.admin)
    )
    again = fleet.client.post(
        "/api/v1/plants/fd001/metrics-reports/batch", json=body, headers=auth(fleet.tokens.admin)
    )

    # Assert: raised by day 7, KEY cleared by day 8; the re-sent batch adds nothing
    assert response.status_code in (200, 201), response.text
    assert again.json()["duplicates"] == 2
    events = [(t, d["key"]) for t, d in _queued(fleet, sub.id)]
    assert events == [("alert.raised", KEY), ("alert.raised", other), ("alert.cleared", KEY)]
    with fleet.app.state.session_factory() as session:
        assert [a.key for a in alerts_service.open_alerts(session=session, plant_id="fd001")] == [
            other
        ]


def _campaign(fleet: Fleet) -> int:
    with fleet.app.state.session_factory() as session:
        recipe_id = registry_service.get_version_or_raise(
            session=session, version_id=fleet.v1
        ).recipe_id
        created = campaigns_service.create_campaign(
            session=session,
            campaign_in=CampaignCreate(
                model="turbofan-rul",
                parent_version_id=fleet.v1,
                recipe_id=recipe_id,
                plants=["fd001", "fd002"],
                strategy="fedavg",
                rounds=2,
                local_epochs=1,
                min_participants=2,
            ),  # fmt: skip
            actor="test",
        )
        return created.id


def test_campaign_finished_once_with_its_summary(fleet: Fleet) -> None:
    # Prepare
    sub = fleet.admin.create_webhook(NOWHERE, [WebhookEvent.CAMPAIGN_FINISHED])
    failed, cancelled = _campaign(fleet), _campaign(fleet)

    # Execute: one fails (twice: the worker repeating its last step), one is cancelled queued
    with fleet.app.state.session_factory() as session:
        campaign = campaigns_service.get_campaign_or_raise(session=session, campaign_id=failed)
        campaigns_service.mark_running(session=session, campaign=campaign, flower_run_id=7)
        for _ in range(2):
            campaigns_service.finish(
                session=session, campaign=campaign, status=CampaignStatus.FAILED,
                failure_code=CampaignFailureCode.NOT_ENOUGH_PARTICIPANTS,
                failure_detail="1 of 2 required plants answered",
            )  # fmt: skip
        campaigns_service.cancel_campaign(session=session, campaign_id=cancelled, actor="test")
        campaigns_service.cancel_campaign(session=session, campaign_id=cancelled, actor="test")

    # Assert
    events = _queued(fleet, sub.id)
    assert [t for t, _ in events] == ["campaign.finished", "campaign.finished"]
    first, second = events[0][1], events[1][1]
    assert (first["campaign_id"], first["status"], first["failure_code"]) == (
        failed, "failed", "not_enough_participants",
    )  # fmt: skip
    assert first["model"] == "turbofan-rul" and first["plants"] == ["fd001", "fd002"]
    assert first["rounds"] == 2 and first["finished_at"] is not None
    assert (second["campaign_id"], second["status"]) == (cancelled, "cancelled")
    assert second["failure_detail"] == "cancelled before it started"


def _hear(fleet: Fleet, plant: str) -> None:
    fleet.admin.post_events(plant, [PlantEventCreate(
        id=uuid.uuid4().hex, kind="rollout.stats", occurred_at=dt.datetime.now(dt.UTC),
        payload={"model": "turbofan-rul", "model_version": "1.0", "stats": {"samples": 1}},
    )])  # fmt: skip


def test_node_stale_once_per_episode_and_recovered(fleet: Fleet) -> None:
    # Prepare: fd001 and fd002 spoke now; fd003 never did (no episode for it)
    sub = fleet.admin.create_webhook(
        NOWHERE, [WebhookEvent.NODE_STALE, WebhookEvent.NODE_RECOVERED]
    )
    _hear(fleet, "fd001")
    _hear(fleet, "fd002")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    factory = fleet.app.state.session_factory

    def check(at: dt.datetime) -> liveness_service.LivenessChanges:
        with factory() as session:
            return liveness_service.check_nodes(session=session, stale_after_s=60, now=at)

    # Execute
    fresh = check(dt.datetime.now(dt.UTC))
    first = check(later)
    repeat = check(later + dt.timedelta(seconds=60))
    _hear(fleet, "fd002")
    back = check(dt.datetime.now(dt.UTC))
    still = check(later + dt.timedelta(seconds=61))

    # Assert
    assert (fresh.stale, fresh.recovered) == ([], [])
    assert (first.stale, first.recovered) == (["fd001", "fd002"], [])
    assert (repeat.stale, repeat.recovered) == ([], [])
    assert (back.stale, back.recovered) == ([], ["fd002"])
    assert (still.stale, still.recovered) == (["fd002"], [])  # a second episode of fd002
    events = [(t, d["plant_id"]) for t, d in _queued(fleet, sub.id)]
    assert events == [
        ("node.stale", "fd001"), ("node.stale", "fd002"), ("node.recovered", "fd002"),
        ("node.stale", "fd002"),
    ]  # fmt: skip
    stale = _queued(fleet, sub.id)[0][1]
    assert stale["timeout_seconds"] == 60 and stale["silent_seconds"] > 60
    with factory() as session:
        assert liveness_service.stale_plants(session=session) == ["fd001", "fd002"]


def test_subscriptions_take_the_new_types_and_refuse_unknown_ones(fleet: Fleet) -> None:
    # Execute
    url = "/api/v1/webhooks"
    headers = auth(fleet.tokens.admin)
    new = ["alert.raised", "alert.cleared", "campaign.finished", "node.stale", "node.recovered"]
    ok = fleet.client.post(url, json={"url": NOWHERE, "events": new}, headers=headers)
    bad = fleet.client.post(url, json={"url": NOWHERE, "events": ["node.exploded"]},
                            headers=headers)  # fmt: skip

    # Assert
    assert ok.status_code == 201, ok.text
    assert sorted(ok.json()["events"]) == sorted(new)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["code"] == "invalid_input"


def test_a_nodes_rollout_stats_are_the_rollout_engines_evidence(fleet: Fleet) -> None:
    # Prepare: the payload plant_node.serving.stats queues for a champion under rollout
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    payload = {
        "plant_id": "fd001", "baseline": "cmapss", "model": "turbofan-rul", "model_version": "2.0",
        "role": "champion", "actor": "node", "at": dt.datetime.now(dt.UTC).isoformat(),
        "stats": {"samples": 200, "fallbacks": 30, "contract_violations": 4, "p99_ms": 40.0},
    }  # fmt: skip
    fleet.admin.post_events("fd001", [PlantEventCreate(
        id=uuid.uuid4().hex, kind="rollout.stats", occurred_at=dt.datetime.now(dt.UTC),
        payload=payload,
    )])  # fmt: skip

    # Execute
    with fleet.app.state.session_factory() as session:
        found = evidence.gather(
            session=session, plant_id="fd001", model="turbofan-rul", version_label="2.0",
            champion_label="1.0", since=since, now=dt.datetime.now(dt.UTC),
        )  # fmt: skip

    # Assert
    values = found.evidence.values
    assert values["rollout.predictions"] == 200
    assert values["rollout.fallback_rate"] == 0.15
    assert values["rollout.contract_violation_rate"] == 0.02
    assert values["rollout.http_p99_ms"] == 40.0
    assert found.refusal is None
