"""The active-learning queue over HTTP: ranking, labels, the daily budget, problem+json."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from plant_node.auth.schemas import NodeRole
from plant_node.config import NodeSettings
from plant_node.main import create_app
from plant_node.monitoring import service as monitoring_service
from plant_node.retraining import service
from tests.plant_node.keys import auth
from tests.plant_node.retraining.helpers import add_feedback, add_predictions

POLICY = """\
kind: retraining
id: retraining-queue-test
version: 1
title: queue test
triggers:
  - {kind: drift_sustained, name: drift, chunks: 3}
label_budget_per_day: 3
"""


@pytest.fixture
def settings(node_settings: NodeSettings, tmp_path: Path) -> NodeSettings:
    (tmp_path / "retraining.yaml").write_text(POLICY)
    return node_settings.model_copy(
        update={"retraining_policy": str(tmp_path / "retraining.yaml"), "scheduler_enabled": False}
    )


def test_queue_ranks_flags_then_probability_near_threshold_and_spends_the_budget(
    settings: NodeSettings, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        # AI4I labelled at threshold 0.3; the log places it midway, at 0.31: 0.29 and 0.33
        # are the unsure ones (a tie: the newer first), 0.97 the surest
        ids = add_predictions(session, [0.05, 0.29, 0.97, 0.33, 0.6], threshold=0.3)
        add_feedback(session, ids[2])  # flagged wrong, no true label: first
    with TestClient(create_app(settings), headers=auth(NodeRole.LINE)) as client:
        page = client.get("/v1/labeling/queue").json()
        order = [i["prediction_id"] for i in page["items"]]
        assert order == [ids[2], ids[3], ids[1], ids[0], ids[4]]
        assert [i["reason"] for i in page["items"]][:2] == ["operator_flag", "uncertainty"]
        assert page["items"][1]["uncertainty"] == pytest.approx(1 - 0.02 / 0.69)
        assert (page["total"], page["budget_per_day"], page["budget_remaining"]) == (5, 3, 3)
        second = client.get("/v1/labeling/queue", params={"offset": 1, "limit": 2}).json()
        assert [i["prediction_id"] for i in second["items"]] == order[1:3]

        answer = client.post(f"/v1/labeling/{ids[2]}", json={"label": 0})  # the flagged one
        assert answer.status_code == 201, answer.text
        assert answer.json()["reason"] == "operator_flag"
        assert answer.json()["budget_remaining"] == 2
        again = client.post(f"/v1/labeling/{ids[2]}", json={"label": 1})
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")
        assert client.post(f"/v1/labeling/{ids[1]}", json={"label": 1}).status_code == 201
        assert client.post(f"/v1/labeling/{ids[3]}", json={"label": 1}).status_code == 201
        spent = client.post(f"/v1/labeling/{ids[4]}", json={"label": 1})
        assert spent.status_code == 409 and "budget" in spent.json()["detail"]
        page = client.get("/v1/labeling/queue").json()
        assert [i["prediction_id"] for i in page["items"]] == [ids[0], ids[4]]
        assert page["budget_remaining"] == 0
    with session_factory() as session:
        labels = monitoring_service.labels_for_predictions(session=session, prediction_ids=ids)
    assert labels == {ids[2]: 0.0, ids[1]: 1.0, ids[3]: 1.0}  # monitoring sees them


def test_bad_labels_are_problems_and_change_nothing(
    settings: NodeSettings, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        (pid,) = add_predictions(session, [0.4])
    with TestClient(create_app(settings), headers=auth(NodeRole.LINE)) as client:
        for body, status in (
            ({"label": 2}, 422),  # a classifier's label is 0 or 1
            ({"label": "x"}, 422),
            ({"label": 1, "extra": 1}, 422),
            ({}, 422),
        ):
            r = client.post(f"/v1/labeling/{pid}", json=body)
            assert r.status_code == status, (body, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        unknown = client.post("/v1/labeling/" + "f" * 32, json={"label": 1})
        assert unknown.status_code == 404
        assert client.post("/v1/labeling/bad%20id", json={"label": 1}).status_code == 422
        assert client.get("/v1/labeling/queue", params={"limit": 0}).status_code == 422
        assert client.get("/v1/labeling/queue").json()["budget_remaining"] == 3
        monitor = client.get("/v1/labeling/queue", headers=auth(NodeRole.MONITOR))
        assert monitor.status_code == 403


def test_regressor_members_spread_ranks_cmapss(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        ids = add_predictions(
            session, [80.0, 60.0, 40.0], baseline="cmapss", threshold=None,
            members=[[80.0, 81.0], [40.0, 80.0], [39.0, 41.0]],
        )  # fmt: skip
        items = service.rank(session=session)
    assert [i.prediction_id for i in items] == [ids[1], ids[2], ids[0]]
    assert items[0].uncertainty == pytest.approx(20.0)


def test_line_signal_route(settings: NodeSettings) -> None:
    with TestClient(create_app(settings), headers=auth(NodeRole.LINE)) as client:
        ok = client.post("/v1/line-signals", json={"value": "recipe-B", "baseline": "ai4i"})
        assert ok.status_code == 201 and ok.json()["kind"] == "product_mix_change"
        bad = client.post("/v1/line-signals", json={"kind": "weather", "value": "x"})
        assert bad.status_code == 422
        assert client.get("/v1/retraining/firings").json() == []
