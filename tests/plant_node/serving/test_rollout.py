"""Staged rollout: shadow is logged never returned, canary takes its share, breaches roll back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from baselines.features import ai4i
from plant_node.config import NodeSettings, RolloutMode
from plant_node.main import create_app
from plant_node.outbox import service as outbox_service
from plant_node.serving.cache import ModelCache
from plant_node.serving.models import Prediction
from plant_node.serving.rollout import RolloutGuard, RolloutLimits
from tests.plant_node.keys import auth
from tests.plant_node.serving.conftest import AI4I_WEIGHTS, ai4i_model


def _client(settings: NodeSettings) -> TestClient:
    return TestClient(create_app(settings), headers=auth())


def _roles(client: TestClient) -> list[tuple[str, str]]:
    assert client.app.state.node.serving.flush_log()  # type: ignore[attr-defined]
    with client.app.state.node.session_factory() as session:  # type: ignore[attr-defined]
        rows = session.query(Prediction).order_by(Prediction.created_at).all()
        return [(r.role, r.model_version) for r in rows]


def _events(client: TestClient) -> list[Any]:
    with client.app.state.node.session_factory() as session:  # type: ignore[attr-defined]
        return outbox_service.list_items(session=session, stream="rollout")


def test_shadow_is_scored_and_logged_but_never_returned(
    served_settings: NodeSettings,
    tmp_path: Path,
    ai4i_state: ai4i.Ai4iFeatureState,
    ai4i_records: list[dict[str, Any]],
) -> None:
    ModelCache(served_settings.cache_path).install(ai4i_model(tmp_path / "c", ai4i_state, "2"))
    with _client(served_settings) as client:
        started = client.post("/v1/rollout", json={"baseline": "ai4i", "version": "2"})
        response = client.post(
            "/v1/predict", json={"baseline": "ai4i", "records": ai4i_records[:3]}
        )
        status = client.get("/v1/rollout").json()
        roles = _roles(client)

    assert started.status_code == 200, started.text
    assert {p["model_version"] for p in response.json()["predictions"]} == {"1"}
    assert sorted(roles) == [("champion", "1")] * 3 + [("shadow", "2")] * 3
    assert status["ai4i"]["challenger"]["mode"] == "shadow"
    assert status["ai4i"]["precision"] == "fp32"  # the test export's only IR
    assert status["ai4i"]["challenger"]["samples"] == 1
    assert status["ai4i"]["challenger"]["disagreement"] == 0.0  # same weights as the champion


def test_canary_takes_its_fraction_and_full_promotes(
    served_settings: NodeSettings,
    tmp_path: Path,
    ai4i_state: ai4i.Ai4iFeatureState,
    ai4i_records: list[dict[str, Any]],
) -> None:
    ModelCache(served_settings.cache_path).install(ai4i_model(tmp_path / "c", ai4i_state, "2"))
    settings = served_settings.model_copy(update={"canary_fraction": 0.5})
    body = {"baseline": "ai4i", "record": ai4i_records[0]}
    with _client(settings) as client:
        client.post("/v1/rollout", json={"baseline": "ai4i", "version": "2", "mode": "canary"})
        versions = [
            client.post("/v1/predict", json=body).json()["model_version"] for _ in range(60)
        ]
        client.post("/v1/rollout", json={"baseline": "ai4i", "version": "2", "mode": "full"})
        after = client.post("/v1/predict", json=body).json()
        kinds = [e.kind for e in _events(client)]

    assert 10 <= versions.count("2") <= 50 and versions.count("1") >= 10
    assert after["model_version"] == "2" and after["fallback"] is False
    assert kinds == ["rollout.started", "rollout.promoted"]


def test_a_disagreeing_challenger_is_rolled_back_with_its_reason(
    served_settings: NodeSettings,
    tmp_path: Path,
    ai4i_state: ai4i.Ai4iFeatureState,
    ai4i_records: list[dict[str, Any]],
) -> None:
    flipped = [-w for w in AI4I_WEIGHTS]  # says the opposite of the champion
    ModelCache(served_settings.cache_path).install(
        ai4i_model(tmp_path / "c", ai4i_state, "bad", weights=flipped)
    )
    settings = served_settings.model_copy(update={"rollback_min_samples": 20})
    with _client(settings) as client:
        client.post("/v1/rollout", json={"baseline": "ai4i", "version": "bad"})
        for i in range(25):
            client.post("/v1/predict", json={"baseline": "ai4i", "record": ai4i_records[i % 20]})
        status = client.get("/v1/rollout").json()
        events = _events(client)

    assert status["ai4i"]["challenger"] is None
    assert [e.kind for e in events] == ["rollout.started", "rollout.rolled_back"]
    assert "disagreement" in events[1].payload["reason"]
    assert events[1].payload["stats"]["samples"] == 20


def test_guard_limits() -> None:
    limits = RolloutLimits(min_samples=10, max_error_rate=0.1, max_p99_ms=5.0)
    slow = RolloutGuard("v", RolloutMode.SHADOW, limits)
    failing = RolloutGuard("v", RolloutMode.CANARY, limits)
    for i in range(10):
        slow.record(20.0, np.array([0.1]), np.array([0.1]), "classification")
        failing.record(1.0, np.array([0.1]), None, "classification")
        if i < 2:
            failing.record_error()

    assert slow.status().breach is not None and "p99" in slow.status().breach  # type: ignore[operator]
    assert failing.status().breach is not None and "error rate" in failing.status().breach  # type: ignore[operator]


def test_an_engineers_rollout_is_queued_for_the_hub_with_who_did_it(
    served_settings: NodeSettings, tmp_path: Path, ai4i_state: ai4i.Ai4iFeatureState
) -> None:
    ModelCache(served_settings.cache_path).install(ai4i_model(tmp_path / "c", ai4i_state, "2"))
    with TestClient(create_app(served_settings), headers=auth()) as client:
        anonymous = client.post(
            "/v1/rollout",
            json={"baseline": "ai4i", "version": "2", "mode": "full"},
            headers={"Authorization": ""},
        )
        line = client.post(
            "/v1/rollout",
            json={"baseline": "ai4i", "version": "2", "mode": "full"},
            headers=auth("line"),
        )
        promoted = client.post(
            "/v1/rollout", json={"baseline": "ai4i", "version": "2", "mode": "full"}
        )
        with client.app.state.node.session_factory() as session:  # type: ignore[attr-defined]
            events = outbox_service.list_items(session=session, stream="rollout")

    assert (anonymous.status_code, line.status_code, promoted.status_code) == (401, 403, 200)
    assert [e.kind for e in events] == ["rollout.promoted"]
    assert events[0].payload["actor"] == "engineer:test-engineer"
    assert events[0].payload["model_version"] == "2"
