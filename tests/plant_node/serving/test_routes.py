"""The serving API end to end in-process: contracts, features, OpenVINO, log, explain, feedback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from baselines.features import ai4i
from plant_node.config import NodeSettings
from plant_node.main import create_app
from plant_node.outbox import service as outbox_service
from plant_node.serving import service as serving_service
from plant_node.serving.cache import ModelCache
from tests.plant_node.keys import auth
from tests.plant_node.serving.conftest import ai4i_model, logistic_score


def _session(client: TestClient) -> Any:
    return client.app.state.node.session_factory()  # type: ignore[attr-defined]


def test_single_predict_logs_and_explains(
    client: TestClient, ai4i_records: list[dict[str, Any]], ai4i_state: ai4i.Ai4iFeatureState
) -> None:
    record = ai4i_records[0]

    response = client.post("/v1/predict", json={"baseline": "ai4i", "record": record})
    body = response.json()
    pid = body["predictions"][0]["prediction_id"]
    assert client.app.state.node.serving.wait_explanations(10)  # type: ignore[attr-defined]
    detail = client.get(f"/v1/predictions/{pid}").json()

    assert response.status_code == 200, body
    assert (body["model_version"], body["fallback"]) == ("1", False)
    pred = body["predictions"][0]
    assert pred["served_by"] == "current" and pred["explanation"] == "pending"
    assert pred["score"] == pytest.approx(logistic_score(ai4i_state, record), abs=1e-5)
    assert pred["label"] == int(pred["score"] >= 0.5)
    assert detail["inputs"] == record
    assert len(detail["features"]) == ai4i_state.n_features
    assert detail["outputs"]["score"] == pred["score"]
    assert detail["latency_ms"] > 0
    attr = detail["attributions"]  # computed right after the response, off the request path
    assert detail["explanation"] == "ready" and attr["method"] == "exact"
    assert set(attr["values"]) == {"type", *ai4i.RAW_NUMERIC}
    assert sum(attr["values"].values()) == pytest.approx(
        attr["value"] - attr["base_value"], abs=1e-5
    )
    assert attr["value"] == pytest.approx(pred["score"], abs=1e-5)


def test_batch_predict(client: TestClient, ai4i_records: list[dict[str, Any]]) -> None:
    response = client.post("/v1/predict", json={"baseline": "ai4i", "records": ai4i_records[:7]})

    assert response.status_code == 200
    preds = response.json()["predictions"]
    assert len(preds) == 7 and len({p["prediction_id"] for p in preds}) == 7


def test_contract_violations_are_422_and_the_batch_is_quarantined(
    client: TestClient, ai4i_records: list[dict[str, Any]]
) -> None:
    bad = [dict(ai4i_records[0], torque_nm=-5.0), dict(ai4i_records[1], type="Z"), ai4i_records[2]]

    response = client.post("/v1/predict", json={"baseline": "ai4i", "records": bad})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "contract_violation"
    rules = {(e["rule"], e["column"]): e["row_indices"] for e in problem["errors"]}
    assert rules == {("range", "torque_nm"): [0], ("vocabulary", "type"): [1]}
    batch_id = problem["detail"].split(" as ")[-1].rstrip(".")
    with _session(client) as session:
        q = serving_service.get_quarantined(session=session, batch_id=batch_id)
        assert q is not None and q.n_rows == 3 and q.payload["records"] == bad
        assert len(q.violations) == 2


def test_missing_signal_and_unknown_baseline(
    client: TestClient, ai4i_records: list[dict[str, Any]]
) -> None:
    record = {k: v for k, v in ai4i_records[0].items() if k != "torque_nm"}

    missing = client.post("/v1/predict", json={"baseline": "ai4i", "record": record})
    unknown = client.post("/v1/predict", json={"baseline": "nope", "record": record})
    neither = client.post("/v1/predict", json={"baseline": "ai4i"})

    assert missing.status_code == 422 and missing.json()["code"] == "contract_violation"
    assert {e["rule"] for e in missing.json()["errors"]} == {"missing_column"}
    assert unknown.status_code == 422 and unknown.json()["code"] == "invalid_input"
    assert neither.status_code == 422 and neither.json()["code"] == "invalid_input"


def test_unknown_prediction_is_404(client: TestClient) -> None:
    response = client.get("/v1/predictions/doesnotexist")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_feedback_is_stored_and_summarized_into_the_outbox(
    client: TestClient, ai4i_records: list[dict[str, Any]]
) -> None:
    pred = client.post("/v1/predict", json={"baseline": "ai4i", "record": ai4i_records[3]})
    pid = pred.json()["predictions"][0]["prediction_id"]

    created = client.post(
        "/v1/feedback",
        json={"prediction_id": pid, "verdict": "wrong", "failure_type": "hdf", "true_label": "1"},
    )
    unknown = client.post("/v1/feedback", json={"prediction_id": "zzz", "verdict": "wrong"})
    invalid = client.post("/v1/feedback", json={"prediction_id": pid, "verdict": "maybe"})

    assert created.status_code == 201, created.text
    assert created.json()["verdict"] == "wrong"
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    assert invalid.status_code == 422 and invalid.json()["code"] == "invalid_input"
    with _session(client) as session:
        labels = serving_service.list_feedback(session=session, prediction_id=pid)
        items = outbox_service.list_items(session=session, stream="feedback")
    assert [f.failure_type for f in labels] == ["hdf"]
    assert len(items) == 1
    summary = items[0].payload
    assert summary["prediction_id"] == pid and summary["verdict"] == "wrong"
    assert summary["model_version"] == "1" and "inputs" not in summary


def test_failing_versions_fall_back_to_previous_then_rule_never_500(
    served_settings: NodeSettings,
    tmp_path: Path,
    ai4i_records: list[dict[str, Any]],
    ai4i_state: ai4i.Ai4iFeatureState,
) -> None:
    cache = ModelCache(served_settings.cache_path)
    record = ai4i_records[0]
    with TestClient(
        create_app(served_settings), headers=auth(), raise_server_exceptions=False
    ) as client:
        # v2 compiles but expects 12 features: it fails at inference.
        cache.install(ai4i_model(tmp_path / "src", ai4i_state, "2", weights=[0.1] * 12))
        cache.set_champion("ai4i", "2")  # as a hub assignment would
        reload = client.post("/v1/models/reload").json()
        by_previous = client.post("/v1/predict", json={"baseline": "ai4i", "record": record})
        client.app.state.node.serving.runtimes["ai4i"].set_previous(None)  # type: ignore[attr-defined]
        by_rule = client.post("/v1/predict", json={"baseline": "ai4i", "record": record})
        again = client.post("/v1/predict", json={"baseline": "ai4i", "record": record})
        metrics = client.get("/metrics").text
        with _session(client) as session:
            alerts = outbox_service.list_items(session=session, stream="alerts")

    assert reload["ai4i"]["versions"] == ["2", "1"]
    assert by_previous.status_code == 200
    p = by_previous.json()
    assert (p["model_version"], p["fallback"]) == ("1", True)
    assert p["predictions"][0]["served_by"] == "previous"
    assert by_rule.status_code == again.status_code == 200
    r = by_rule.json()
    assert r["fallback"] is True and r["predictions"][0]["served_by"] == "fallback"
    assert r["predictions"][0]["model_name"] == "ai4i-physical-rules"
    assert r["predictions"][0]["explanation"] == "unavailable"
    kinds = [a.kind for a in alerts]
    assert kinds.count("alert.inference_failed") == 1  # cooldown: one per cause, not per request
    assert "alert.fallback_rule" in kinds
    assert 'millwright_node_fallbacks_total{baseline="ai4i",reason="rule"} 2.0' in metrics


def test_inline_explanations_and_cmapss_windows(
    served_settings: NodeSettings, cmapss_records: list[dict[str, Any]]
) -> None:
    settings = served_settings.model_copy(update={"explain": "inline"})
    with TestClient(create_app(settings), headers=auth()) as client:
        response = client.post(
            "/v1/predict", json={"baseline": "cmapss", "records": cmapss_records}
        )

    assert response.status_code == 200, response.text
    preds = response.json()["predictions"]
    assert len(preds) == 2  # one per engine
    for pred in preds:
        attr = pred["attributions"]
        assert pred["explanation"] == "ready" and attr["method"] == "permutation"
        assert len(attr["values"]) == 14 and set(attr["stderr"]) == set(attr["values"])
        assert sum(attr["values"].values()) == pytest.approx(
            attr["value"] - attr["base_value"], abs=1e-4
        )
        assert attr["value"] == pytest.approx(pred["score"], abs=1e-4)


def test_serves_the_baselines_export_layout(
    node_settings: NodeSettings,
    tmp_path: Path,
    ai4i_state: ai4i.Ai4iFeatureState,
    ai4i_records: list[dict[str, Any]],
) -> None:
    from tests.plant_node.serving.irs import as_baselines_export

    export = as_baselines_export(ai4i_model(tmp_path, ai4i_state, "x"), ai4i_state.to_dict())
    ModelCache(node_settings.cache_path).install(export, version="2026.11.1")

    with TestClient(create_app(node_settings), headers=auth()) as client:
        response = client.post("/v1/predict", json={"baseline": "ai4i", "record": ai4i_records[0]})

    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == "2026.11.1"
    assert response.json()["fallback"] is False
    assert response.json()["predictions"][0]["score"] == pytest.approx(
        logistic_score(ai4i_state, ai4i_records[0]), abs=1e-5
    )


def test_oversized_batch_is_413(
    served_settings: NodeSettings, ai4i_records: list[dict[str, Any]]
) -> None:
    settings = served_settings.model_copy(update={"max_batch_size": 2})
    with TestClient(create_app(settings), headers=auth()) as client:
        response = client.post(
            "/v1/predict", json={"baseline": "ai4i", "records": ai4i_records[:3]}
        )

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_malformed_bodies_are_422_problems_naming_the_field(client: TestClient) -> None:
    broken = client.post(
        "/v1/predict",
        content=b'{"baseline": "ai4i", "record": {',
        headers={"content-type": "application/json"},
    )
    extra = client.post("/v1/predict", json={"baseline": "ai4i", "record": {}, "oops": 1})
    wrong_type = client.post("/v1/predict", json={"baseline": "ai4i", "records": "nope"})

    assert broken.status_code == 422 and broken.json()["code"] == "invalid_input"
    assert broken.headers["content-type"] == "application/problem+json"
    assert "not valid JSON" in broken.json()["detail"]
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "body.oops"
    assert wrong_type.status_code == 422
    assert wrong_type.json()["errors"][0]["field"] == "body.records"


def test_predict_answer_matches_its_declared_schema(
    client: TestClient, cmapss_records: list[dict[str, Any]]
) -> None:
    from plant_node.serving.schemas import PredictResponse

    response = client.post("/v1/predict", json={"baseline": "cmapss", "records": cmapss_records})
    parsed = PredictResponse.model_validate_json(response.content)
    schema = client.get("/openapi.json").json()["paths"]["/v1/predict"]["post"]

    assert response.headers["content-type"] == "application/json"
    assert len(parsed.predictions) == 2 and parsed.predictions[0].explanation == "pending"
    assert (
        "baseline" in schema["requestBody"]["content"]["application/json"]["schema"]["properties"]
    )
