"""The hub scheduler: jobs persisted in the hub database, registered once, coalesced."""

from __future__ import annotations

import datetime as dt
import hashlib
import pickle
import threading

from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from federation.hub_client import HubClient
from hub import scheduler as hub_scheduler
from hub.config import HubSettings
from hub.db import make_engine
from tests.hub import factories
from tests.hub.fixtures import Tokens, auth


def _stored(settings: HubSettings) -> dict[str, float | None]:
    engine = make_engine(settings)
    table = hub_scheduler.apscheduler_jobs
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.id, table.c.next_run_time)).all()
    engine.dispose()
    return {job_id: when for job_id, when in rows}


def test_jobs_persist_once_and_keep_their_next_run_across_restarts(
    hub_settings: HubSettings,
) -> None:
    first = hub_scheduler.build_scheduler(hub_settings, scheduler_class=BackgroundScheduler)
    first.start(paused=True)
    jobs = {j.id: j for j in first.get_jobs()}
    first.shutdown(wait=False)
    before = _stored(hub_settings)
    again = hub_scheduler.build_scheduler(hub_settings, scheduler_class=BackgroundScheduler)
    again.start(paused=True)
    after_ids = sorted(j.id for j in again.get_jobs())
    again.shutdown(wait=False)
    assert sorted(before) == sorted(hub_scheduler.JOBS) == after_ids
    assert _stored(hub_settings) == before  # not re-added, next run times kept
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1
        assert job.misfire_grace_time == hub_scheduler.MISFIRE_GRACE_S


def _set_next_run(settings: HubSettings, job_id: str, when: dt.datetime) -> None:
    """Move a stored job's next run, as if the scheduler had been down since then."""
    engine = make_engine(settings)
    table = hub_scheduler.apscheduler_jobs
    with engine.begin() as conn:
        blob = conn.execute(select(table.c.job_state).where(table.c.id == job_id)).scalar_one()
        state = pickle.loads(blob)
        state["next_run_time"] = when
        conn.execute(
            update(table)
            .where(table.c.id == job_id)
            .values(next_run_time=when.timestamp(), job_state=pickle.dumps(state, 2))
        )
    engine.dispose()


def test_runs_missed_while_down_run_once(hub_settings: HubSettings) -> None:
    sched = hub_scheduler.build_scheduler(hub_settings, scheduler_class=BackgroundScheduler)
    sched.start(paused=True)
    sched.shutdown(wait=True)
    now = dt.datetime.now(dt.UTC)
    # Down for 10 minutes: the settler (every 10 s here) missed about 60 runs, the hourly
    # purge one. Coalesced, each runs once, from its latest due time (inside the grace).
    _set_next_run(hub_settings, "idempotency.purge", now - dt.timedelta(seconds=60))
    _set_next_run(hub_settings, "retraining.settle_candidates", now - dt.timedelta(seconds=600))
    ran: list[str] = []
    both = threading.Event()

    def seen(event: JobExecutionEvent) -> None:
        ran.append(event.job_id)
        if len(ran) >= 2:
            both.set()

    restarted = hub_scheduler.build_scheduler(hub_settings, scheduler_class=BackgroundScheduler)
    restarted.add_listener(seen, EVENT_JOB_EXECUTED)
    restarted.start()
    assert both.wait(10)
    restarted.shutdown(wait=True)
    assert sorted(ran) == ["idempotency.purge", "retraining.settle_candidates"]
    stored = _stored(hub_settings)
    assert all(when is not None and when > now.timestamp() for when in stored.values())


def test_campaign_steps_become_a_job_only_when_configured(hub_settings: HubSettings) -> None:
    plain = hub_scheduler.build_scheduler(hub_settings, scheduler_class=BackgroundScheduler)
    plain.start(paused=True)
    plain.shutdown(wait=True)
    assert "campaigns.advance" not in _stored(hub_settings)
    moved = hub_settings.model_copy(
        update={"campaigns_in_scheduler": True, "campaign_superlink": "127.0.0.1:1"}
    )
    sched = hub_scheduler.build_scheduler(moved, scheduler_class=BackgroundScheduler)
    sched.start(paused=True)
    sched.shutdown(wait=True)
    assert "campaigns.advance" in _stored(hub_settings)
    # No active campaign: the tick returns without contacting the (unreachable) SuperLink.
    assert hub_scheduler.advance_campaigns() == 0
    back = hub_scheduler.build_scheduler(hub_settings, scheduler_class=BackgroundScheduler)
    back.start(paused=True)
    back.shutdown(wait=True)
    assert sorted(_stored(hub_settings)) == sorted(hub_scheduler.JOBS)


def test_recipe_schedule_is_a_persisted_cron_job_that_starts_a_campaign(
    hub_settings: HubSettings, app: FastAPI, client: TestClient, tokens: Tokens
) -> None:
    blob = b"scheduled-parent"
    digest = hashlib.sha256(blob).hexdigest()
    assert client.put(
        f"/api/v1/artifacts/sha256/{digest}", content=blob, headers=auth(tokens.admin)
    ).status_code == 201
    schedule = {"cron": "0 3 * * mon", "model": "turbofan-rul", "plants": ["fd001", "fd002"],
                "rounds": 2}
    with app.state.session_factory() as session:
        factories.model(session)
        recipe = factories.recipe(
            session, hyperparameters={"lr": 0.001, "federation": {"schedule": schedule}}
        )
        plain = factories.recipe(session, name="no-schedule")
        parent = factories.version(session, recipe_id=recipe.id, artifact_digest=digest)
    sched = hub_scheduler.build_scheduler(hub_settings, scheduler_class=BackgroundScheduler)
    sched.start(paused=True)
    job = sched.get_job(f"campaigns.recipe.{recipe.id}")
    sched.shutdown(wait=True)
    assert job is not None and job.next_run_time.weekday() == 0 and job.next_run_time.hour == 3
    assert f"campaigns.recipe.{plain.id}" not in _stored(hub_settings)

    campaign_id = hub_scheduler.scheduled_campaign(recipe.id)

    assert campaign_id is not None
    campaign = HubClient(client=client, token=tokens.admin, retries=0).get_campaign(campaign_id)
    assert campaign.parent_version_id == parent.id and campaign.recipe_id == recipe.id
    assert campaign.plants == ["fd001", "fd002"] and campaign.rounds == 2
    assert hub_scheduler.scheduled_campaign(plain.id) is None
