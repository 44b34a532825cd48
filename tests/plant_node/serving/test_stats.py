"""Periodic rollout.stats: the champion's and the challenger's counters, queued for the hub."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from baselines.features import ai4i
from federation.schemas.events import PlantEventCreate
from plant_node.config import NodeSettings
from plant_node.deps import NodeState
from plant_node.main import create_app
from plant_node.outbox import service as outbox_service
from plant_node.serving.cache import ModelCache
from plant_node.serving.follow import HubFollower
from plant_node.serving.stats import RolloutStatsReporter, p99_ms
from tests.plant_node.keys import auth
from tests.plant_node.serving.conftest import ai4i_model
from tests.plant_node.serving.test_follow import Hub


def _stats(state: NodeState) -> list[dict[str, Any]]:
    with state.session_factory() as session:
        items = outbox_service.list_items(session=session, stream="rollout")
        return [dict(i.payload) for i in items if i.kind == "rollout.stats"]


def test_p99_is_the_upper_bound_of_its_bucket() -> None:
    # 100 requests: 98 under 1 ms, 2 between 5 and 7.5 ms (buckets are cumulative)
    buckets = (0.0, 98.0, 98.0, 98.0, 98.0, 100.0, *([100.0] * 7))
    assert p99_ms(buckets) == 7.5
    assert p99_ms((0.0,) * 13) is None
    assert p99_ms((*([0.0] * 12), 4.0)) == 1000.0  # all beyond the last bound: its value


def test_champion_and_challenger_counters_are_reported_per_interval(
    served_settings: NodeSettings,
    tmp_path: Path,
    ai4i_state: ai4i.Ai4iFeatureState,
    ai4i_records: list[dict[str, Any]],
) -> None:
    # Prepare
    ModelCache(served_settings.cache_path).install(ai4i_model(tmp_path / "c", ai4i_state, "2"))
    # the app's own follower reports nothing here; the test drives a reporter of its own
    settings = served_settings.model_copy(
        update={"scheduler_enabled": False, "rollout_stats_interval_s": 0.0}
    )
    now = [1000.0]
    with TestClient(create_app(settings), headers=auth()) as client:
        state: NodeState = client.app.state.node  # type: ignore[attr-defined]
        assert state.serving is not None
        reporter = RolloutStatsReporter(
            serving=state.serving, plant_id="plant-t", session_factory=state.session_factory,
            interval_s=30.0, heartbeat_s=300.0, model_of={"ai4i": "ai4i-mlp"}.get,
            clock=lambda: now[0],
        )  # fmt: skip

        # Execute
        start = reporter.report()  # the first report comes one interval after the start
        now[0] += 30
        first = reporter.report()  # both baselines, nothing served yet
        client.post("/v1/predict", json={"baseline": "ai4i", "records": ai4i_records[:5]})
        early = reporter.report()  # not due yet
        now[0] += 30
        served = reporter.report()
        assert client.post("/v1/rollout", json={"baseline": "ai4i", "version": "2"}).status_code \
            == 200  # fmt: skip
        bad = [dict(ai4i_records[0], torque_nm=-5.0)]  # refused while the shadow is staged
        assert client.post("/v1/predict", json={"baseline": "ai4i", "records": bad}).status_code \
            == 422  # fmt: skip
        client.post("/v1/predict", json={"baseline": "ai4i", "records": ai4i_records[5:8]})
        now[0] += 30
        staged = reporter.report()
        now[0] += 30
        idle = reporter.report()
        now[0] += 300
        heartbeat = reporter.report()
        stats = _stats(state)

    # Assert
    assert (start, first, early, served, idle) == (0, 2, 0, 1, 0)
    assert staged == 2  # the ai4i champion moved, and a shadow is staged
    assert heartbeat == 3  # nothing moved, but 5 minutes passed: champion x2, shadow
    by_model = {s["model"] for s in stats[:2]}
    assert "ai4i-mlp" in by_model  # the registry name the hub's rollout evidence matches
    ai4i_first = next(s for s in stats[:2] if s["baseline"] == "ai4i")
    assert ai4i_first["stats"] == {
        "samples": 0, "fallbacks": 0, "contract_violations": 0, "p99_ms": None,
    }  # fmt: skip
    after = stats[2]
    assert (after["baseline"], after["role"], after["model_version"]) == ("ai4i", "champion", "1")
    assert after["stats"]["samples"] == 5 and after["stats"]["fallbacks"] == 0
    assert after["stats"]["p99_ms"] is not None and after["stats"]["p99_ms"] > 0
    champion, shadow = stats[3], stats[4]
    assert champion["stats"]["samples"] == 8 and champion["stats"]["contract_violations"] == 1
    assert (shadow["role"], shadow["model_version"]) == ("shadow", "2")
    # the shadow's rows (3 in one request), none failed; 1 of the line's 4 rows was refused
    assert shadow["model"] == "ai4i-mlp"
    assert {k: shadow["stats"][k] for k in ("samples", "fallbacks", "contract_violations")} \
        == {"samples": 3, "fallbacks": 0, "contract_violations": 1}  # fmt: skip
    assert shadow["stats"]["contract_violation_rate"] == 0.25
    assert shadow["stats"]["p99_ms"] > 0
    # Bounded, and a valid hub event payload
    for payload in stats:
        assert len(payload["stats"]) <= 6
        PlantEventCreate(id="x" * 32, kind="rollout.stats", occurred_at=payload["at"],
                         payload=payload)  # fmt: skip


def test_the_follower_reports_stats_and_survives_failures(
    served_settings: NodeSettings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Prepare
    settings = served_settings.model_copy(
        update={"scheduler_enabled": False, "rollout_stats_interval_s": 0.0}
    )
    with TestClient(create_app(settings), headers=auth()) as client:
        state: NodeState = client.app.state.node  # type: ignore[attr-defined]
        assert state.serving is not None
        woken: list[int] = []
        follower = HubFollower(
            client=Hub(), plant_id="plant-t", serving=state.serving, source=None,  # type: ignore[arg-type]
            session_factory=state.session_factory, on_queued=lambda: woken.append(1),
            stats_interval_s=0.3,
        )  # fmt: skip
        off = HubFollower(
            client=Hub(), plant_id="plant-t", serving=state.serving, source=None,  # type: ignore[arg-type]
            session_factory=state.session_factory,
        )  # fmt: skip
        broken = HubFollower(
            client=Hub(), plant_id="plant-t", serving=state.serving, source=None,  # type: ignore[arg-type]
            session_factory=sessionmaker(create_engine(f"sqlite:///{tmp_path}/no/such/dir.db")),
            stats_interval_s=0.01,
        )  # fmt: skip

        # Execute
        started = follower.report_stats()  # the interval starts
        time.sleep(0.35)
        queued = follower.report_stats()
        again = follower.report_stats()  # within the next interval
        none = off.report_stats()  # interval 0: reporting is off
        broken.report_stats()
        time.sleep(0.02)
        failed = broken.report_stats()  # the outbox cannot be written: logged, not raised
        retried = broken.stats._sent  # what failed is not remembered as sent
        stats = _stats(state)

    # Assert
    assert (started, queued, again, none, failed) == (0, 2, 0, 0, 0)
    assert retried == {}
    assert "rollout stats not queued" in caplog.text  # it was due, and the write failed
    assert woken == [1]
    assert {s["baseline"] for s in stats} == {"ai4i", "cmapss"}
