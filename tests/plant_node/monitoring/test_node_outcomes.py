"""POST /v1/outcomes: failure records and QA verdicts in; bad input refused, nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from plant_node.db import load_metadata
from plant_node.main import create_app
from plant_node.monitoring.models import Outcome
from plant_node.replay import fleet_requests
from plant_node.serving.cache import ModelCache
from tests.plant_node.keys import auth
from tests.plant_node.monitoring.node_helpers import monitored_node

UNITS = [1, 2, 3]


def _node(root: Path, rul_model_dir: Path, ai4i_model_dir: Path) -> TestClient:
    settings = monitored_node(root, rul_model_dir)
    cache = ModelCache(settings.cache_path)
    cache.install(ai4i_model_dir)
    cache.set_champion("ai4i", "1")
    return TestClient(create_app(settings), headers=auth())


@pytest.fixture
def node(tmp_path: Path, rul_model_dir: Path, ai4i_model_dir: Path) -> Iterator[TestClient]:
    with _node(tmp_path / "node", rul_model_dir, ai4i_model_dir) as client:
        yield client


@pytest.fixture(scope="module")
def logged(
    tmp_path_factory: pytest.TempPathFactory, rul_model_dir: Path, ai4i_model_dir: Path
) -> Iterator[tuple[TestClient, list[str], list[str]]]:
    """One node for every bad-input case (they must change nothing): logged predictions of
    units 1-3 and two classifier predictions, and a failure record of unit 1."""
    root = tmp_path_factory.mktemp("outcomes")
    with _node(root / "node", rul_model_dir, ai4i_model_dir) as client:
        preds = [p["prediction_id"] for p in _predict_units(client)]
        clf = _classify(client, AI4I_RECORDS)
        response = client.post("/v1/outcomes", json={"unit": 1, "failed_at_cycle": 300})
        assert response.status_code == 201
        yield client, preds, clf


def _predict_units(client: TestClient) -> list[dict[str, Any]]:
    preds = []
    for records in fleet_requests(units=UNITS, slots=3, every=20, seed=0):
        response = client.post("/v1/predict", json={"baseline": "cmapss", "records": records})
        assert response.status_code == 200, response.text
        preds += response.json()["predictions"]
    return preds


def _classify(client: TestClient, records: list[dict[str, Any]]) -> list[str]:
    response = client.post("/v1/predict", json={"baseline": "ai4i", "records": records})
    assert response.status_code == 200, response.text
    return [p["prediction_id"] for p in response.json()["predictions"]]


AI4I_COLUMNS = ("type", "air_temperature_k", "process_temperature_k", "rotational_speed_rpm",
                "torque_nm", "tool_wear_min")  # fmt: skip
AI4I_RECORDS = [
    dict(zip(AI4I_COLUMNS, ("M", 298.1, 308.6, 1551.0, 42.8, 0.0), strict=True)),
    dict(zip(AI4I_COLUMNS, ("L", 298.2, 308.7, 1408.0, 46.3, 3.0), strict=True)),
]


def _snapshot(client: TestClient) -> dict[str, list[Any]]:
    with client.app.state.node.session_factory() as session:  # type: ignore[attr-defined]
        return {
            t.name: sorted(map(repr, session.execute(select(t)).all()))
            for t in load_metadata().sorted_tables
        }


def test_failure_records_and_qa_verdicts_are_stored(node: TestClient) -> None:
    preds = _predict_units(node)
    pids = _classify(node, AI4I_RECORDS)
    body = {
        "outcomes": [
            {"unit": 1, "failed_at_cycle": 400},
            {"unit": "2", "failed_at_cycle": 350.0, "failed_at": "2026-03-01T08:00:00Z"},
            {"prediction_id": pids[0], "label": 1},
            {"prediction_id": pids[1], "label": False},
            {"prediction_id": preds[0]["prediction_id"], "label": 87.5},
        ]
    }

    response = node.post("/v1/outcomes", json=body)

    assert response.status_code == 201, response.text
    out = response.json()
    assert out["created"] == 5
    kinds = [(o["kind"], o["baseline"], o["unit"], o["label"]) for o in out["outcomes"]]
    assert kinds == [
        ("failure", "cmapss", "1", None),
        ("failure", "cmapss", "2", None),
        ("qa", "ai4i", None, 1.0),
        ("qa", "ai4i", None, 0.0),
        ("qa", "cmapss", None, 87.5),
    ]
    assert out["outcomes"][1]["failed_at"].startswith("2026-03-01T08:00:00")
    single = node.post("/v1/outcomes", json={"unit": 3, "failed_at_cycle": 500})
    assert single.status_code == 201 and single.json()["created"] == 1


@pytest.mark.parametrize(
    ("make_body", "status", "field"),
    [
        (lambda p, c: {"prediction_id": "0" * 32, "label": 1}, 422, "prediction_id"),
        (lambda p, c: {"unit": 999, "failed_at_cycle": 300}, 422, "unit"),
        (lambda p, c: {"prediction_id": c[0], "label": 0.7}, 422, "label"),
        (lambda p, c: {"prediction_id": c[0], "label": 2}, 422, "label"),
        (lambda p, c: {"prediction_id": p[0], "label": True}, 422, "label"),
        (lambda p, c: {"prediction_id": p[0], "label": "broken"}, 422, None),
        (lambda p, c: {"unit": 1, "failed_at_cycle": 3}, 422, "failed_at_cycle"),
        (lambda p, c: {"unit": 1, "failed_at_cycle": -1}, 422, None),
        (lambda p, c: {"unit": 1, "failed_at_cycle": 300, "extra": 1}, 422, None),
        # a batch is all or nothing: one bad record, nothing stored
        (lambda p, c: {"outcomes": [{"unit": 2, "failed_at_cycle": 300},
                                    {"prediction_id": "f" * 32, "label": 1}]},
         422, "prediction_id"),
        (lambda p, c: {"unit": 1, "failed_at_cycle": 300}, 409, "outcome"),  # already recorded
        (lambda p, c: {"outcomes": [{"prediction_id": c[1], "label": 1},
                                    {"prediction_id": c[1], "label": 0}]}, 409, "outcome"),
    ],
)  # fmt: skip
def test_bad_outcomes_are_refused_and_change_nothing(
    logged: tuple[TestClient, list[str], list[str]],
    make_body: Any,
    status: int,
    field: str | None,
) -> None:
    node, preds, clf = logged
    before = _snapshot(node)

    response = node.post("/v1/outcomes", json=make_body(preds, clf))

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"]
    if field is not None:
        assert field in {e.get("field") for e in problem["errors"]}, problem
    assert _snapshot(node) == before


def test_idempotency_key_replays_the_first_answer(node: TestClient) -> None:
    _predict_units(node)
    body = {"unit": 2, "failed_at_cycle": 300}
    headers = {"Idempotency-Key": "maint-2026-03-01-0001"}

    first = node.post("/v1/outcomes", json=body, headers=headers)
    again = node.post("/v1/outcomes", json=body, headers=headers)
    plain = node.post("/v1/outcomes", json=body)  # no key: the same record is a duplicate
    before = _snapshot(node)
    other = node.post("/v1/outcomes", json={"unit": 3, "failed_at_cycle": 300}, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert plain.status_code == 409
    assert other.status_code == 422 and other.json()["code"] == "idempotency_mismatch"
    assert _snapshot(node) == before
    with node.app.state.node.session_factory() as session:  # type: ignore[attr-defined]
        assert len(session.execute(select(Outcome)).all()) == 1


def test_feedback_and_outcomes_become_labels_for_the_monitor(node: TestClient) -> None:
    from plant_node.monitoring import flows
    from plant_node.serving import records as serving_records

    pids = _classify(node, AI4I_RECORDS * 2)
    preds = _predict_units(node)
    fb = node.post("/v1/feedback", json={"prediction_id": pids[0], "verdict": "wrong"})
    fb2 = node.post(
        "/v1/feedback", json={"prediction_id": pids[1], "verdict": "wrong", "true_label": "1"}
    )
    qa = {"prediction_id": pids[1], "label": 0}  # QA overrides the operator's call
    posted = node.post("/v1/outcomes", json={"outcomes": [qa, {"unit": 1, "failed_at_cycle": 400}]})
    assert fb.status_code == fb2.status_code == 201 and posted.status_code == 201

    state = node.app.state.node  # type: ignore[attr-defined]
    with state.session_factory() as session:
        targets = {t.baseline: t for t in flows._targets(session)}
        clf = targets["ai4i"]
        read = serving_records.log_batch
        rows, _ = read(session=session, version=clf.version, after=None, limit=100)
        frame = flows._frame(session, clf, rows, 125.0).set_index("prediction_id")
        reg = targets["cmapss"]
        rows, _ = read(session=session, version=reg.version, after=None, limit=100)
        rul = flows._frame(session, reg, rows, 125.0)

    assert clf.classifier and not reg.classifier
    assert frame.loc[pids[0], "label"] == 1 - frame.loc[pids[0], "predicted_class"]  # "wrong"
    assert frame.loc[pids[1], "label"] == 0
    assert frame.loc[pids[2:], "label"].isna().all()
    unit1 = rul[rul["unit_id"] == "1"]
    assert len(unit1) and (unit1["label"] == (400 - unit1["cycle"]).clip(upper=125)).all()
    assert rul[rul["unit_id"] != "1"]["label"].isna().all()
    assert len(rul) == len(preds)
