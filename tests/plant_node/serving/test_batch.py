"""``POST /v1/predict/batch``: many rows in one model call, all or nothing, every row explained."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from baselines.features import ai4i
from plant_node.serving import service as serving_service
from plant_node.serving.models import Prediction, QuarantinedBatch
from plant_node.serving.schemas import BATCH_MAX_ROWS
from tests.plant_node.serving.conftest import logistic_score


def _rows(records: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [dict(records[i % len(records)], udi=i + 1) for i in range(n)]


def _session(client: TestClient) -> Any:
    return client.app.state.node.session_factory()  # type: ignore[attr-defined]


def test_batch_scores_logs_and_explains_every_row(
    client: TestClient, ai4i_records: list[dict[str, Any]], ai4i_state: ai4i.Ai4iFeatureState
) -> None:
    records = _rows(ai4i_records, 300)

    response = client.post("/v1/predict/batch", json={"baseline": "ai4i", "records": records})
    body = response.json()
    assert client.app.state.node.serving.wait_explanations(20)  # type: ignore[attr-defined]

    assert response.status_code == 200, body
    preds = body["predictions"]
    assert len(preds) == 300 and len({p["prediction_id"] for p in preds}) == 300
    for i in (0, 17, 299):  # answers come back in the order of the rows
        assert preds[i]["score"] == pytest.approx(logistic_score(ai4i_state, records[i]), abs=1e-5)
    with _session(client) as session:
        logged = session.scalars(
            select(Prediction).where(Prediction.batch_id == body["batch_id"])
        ).all()
        assert len(logged) == 300  # every row durable before the answer
        assert {r.id for r in logged} == {p["prediction_id"] for p in preds}
        for row in logged:
            detail = serving_service.to_detail(row)
            assert detail.explanation == "ready", detail.attributions
            attr = detail.attributions
            assert attr is not None and attr["method"] == "exact"
            assert sum(attr["values"].values()) == pytest.approx(
                attr["value"] - attr["base_value"], abs=1e-5
            )


def test_one_bad_row_rejects_the_whole_batch_naming_its_rows(
    client: TestClient, ai4i_records: list[dict[str, Any]]
) -> None:
    records = _rows(ai4i_records, 50)
    records[3] = dict(records[3], torque_nm=-5.0)
    records[41] = dict(records[41], type="Z")
    with _session(client) as session:
        before = session.scalar(select(func.count()).select_from(Prediction))

    response = client.post("/v1/predict/batch", json={"baseline": "ai4i", "records": records})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "contract_violation"
    assert {(e["column"], tuple(e["row_indices"])) for e in problem["errors"]} == {
        ("torque_nm", (3,)),
        ("type", (41,)),
    }
    assert "rows [3, 41]" in problem["detail"]
    with _session(client) as session:  # nothing scored, the batch kept in quarantine
        assert session.scalar(select(func.count()).select_from(Prediction)) == before
        batch_id = problem["detail"].split(" as ")[-1].rstrip(".")
        quarantined = session.get(QuarantinedBatch, batch_id)
        assert quarantined is not None and quarantined.n_rows == 50


def test_batch_limits_are_413_and_422(
    client: TestClient, ai4i_records: list[dict[str, Any]]
) -> None:
    too_many = _rows(ai4i_records, BATCH_MAX_ROWS + 1)
    at_limit = _rows(ai4i_records, BATCH_MAX_ROWS)

    over = client.post("/v1/predict/batch", json={"baseline": "ai4i", "records": too_many})
    exact = client.post("/v1/predict/batch", json={"baseline": "ai4i", "records": at_limit})
    empty = client.post("/v1/predict/batch", json={"baseline": "ai4i", "records": []})
    unknown = client.post("/v1/predict/batch", json={"baseline": "nope", "records": at_limit[:1]})

    assert over.status_code == 413 and over.json()["code"] == "payload_too_large"
    assert exact.status_code == 200 and len(exact.json()["predictions"]) == BATCH_MAX_ROWS
    assert empty.status_code == 422 and empty.headers["content-type"] == "application/problem+json"
    assert unknown.status_code == 422 and unknown.json()["code"] == "invalid_input"


def test_the_explanation_backlog_is_bounded_in_rows_not_only_requests(
    client: TestClient, ai4i_records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import queue

    from plant_node.serving import flows as flows_module

    flows = client.app.state.node.serving  # type: ignore[attr-defined]
    monkeypatch.setattr(flows_module, "EXPLAIN_BACKLOG_ROWS", 10)
    real = flows._explain_queue
    flows._explain_queue = queue.Queue(maxsize=100)  # nobody takes from it: a stalled explainer
    try:
        first = client.post(
            "/v1/predict/batch", json={"baseline": "ai4i", "records": _rows(ai4i_records, 8)}
        ).json()
        second = client.post(
            "/v1/predict/batch", json={"baseline": "ai4i", "records": _rows(ai4i_records, 5)}
        ).json()
    finally:
        flows._explain_queue = real
        flows._explain_rows = 0

    assert {p["explanation"] for p in first["predictions"]} == {"pending"}  # an empty backlog
    assert {p["explanation"] for p in second["predictions"]} == {"unavailable"}  # 8 + 5 > 10
    metrics = client.get("/metrics").text
    assert 'millwright_node_explanations_late_total{baseline="ai4i"} 5.0' in metrics
