"""The persistent job store in the node's SQLite database, and the run ledger's rules."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from plant_node import scheduler
from plant_node.config import NodeSettings
from plant_node.db import utcnow
from plant_node.deps import NodeState
from plant_node.metrics import NodeMetrics
from plant_node.scheduling import service as ledger


def _state(settings: NodeSettings, engine: Engine, factory: sessionmaker[Session]) -> NodeState:
    return NodeState(
        settings=settings, engine=engine, session_factory=factory, metrics=NodeMetrics()
    )


def test_jobs_keep_their_next_run_across_restarts_unless_their_interval_changed(
    node_settings: NodeSettings, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    first = scheduler.start_scheduler(_state(node_settings, engine, session_factory))
    before = {j.id: j.next_run_time for j in first.get_jobs()}
    first.shutdown(wait=True)
    assert set(before) == set(scheduler.JOBS)  # registered by name
    assert all(j.misfire_grace_time == 600 and j.coalesce and j.max_instances == 1
               for j in first.get_jobs())  # fmt: skip

    again = scheduler.start_scheduler(_state(node_settings, engine, session_factory))
    assert {j.id: j.next_run_time for j in again.get_jobs()} == before  # kept, not re-added
    again.shutdown(wait=True)

    faster = node_settings.model_copy(update={"retraining_interval_s": 60.0})
    third = scheduler.start_scheduler(_state(faster, engine, session_factory))
    after = {j.id: j.next_run_time for j in third.get_jobs()}
    third.shutdown(wait=True)
    assert after["retraining.evaluate"] < before["retraining.evaluate"]  # rescheduled
    assert after["monitoring.run"] == before["monitoring.run"]
    with session_factory() as session:
        stored = {j.name for j in ledger.list_jobs(session=session)}
    assert stored == set(scheduler.JOBS)


def test_ledger_claims_a_slot_once_and_recovers_interrupted_runs(
    session_factory: sessionmaker[Session],
) -> None:
    now = utcnow()
    recent, old = now - timedelta(seconds=30), now - timedelta(hours=2)
    with session_factory() as session:
        assert ledger.claim(session=session, job="j", scheduled_at=recent, pid=1)
        assert not ledger.claim(session=session, job="j", scheduled_at=recent, pid=2)
        assert ledger.claim(session=session, job="j", scheduled_at=old, pid=1)
        # the process died: both slots are still running
        redo = ledger.recover(session=session, grace_s=600, now=now)
        assert [r.scheduled_at for r in redo] == [recent]  # the old one is beyond the grace
        assert ledger.claim(session=session, job="j", scheduled_at=recent, pid=3)  # taken over
        ledger.finish(session=session, job="j", scheduled_at=recent)
        assert not ledger.claim(session=session, job="j", scheduled_at=recent, pid=4)  # ran
        runs = {r.scheduled_at: r for r in ledger.list_runs(session=session, job="j")}
    assert runs[recent].status == "ok" and runs[recent].pid == 3
    assert runs[old].status == "interrupted" and "ended mid-run" in (runs[old].error or "")
