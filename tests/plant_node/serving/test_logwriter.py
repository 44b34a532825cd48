"""The prediction log writer and the batched explainer: nothing lost, explanations exact."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from baselines.features import ai4i
from plant_node.config import NodeSettings
from plant_node.db import make_engine, make_session_factory
from plant_node.main import create_app
from plant_node.serving.explain import shapley
from plant_node.serving.flows import PendingExplanation
from plant_node.serving.logwriter import PredictionLog
from plant_node.serving.models import Prediction
from tests.plant_node.keys import auth


def _count(settings: NodeSettings) -> int:
    engine = make_engine(settings.db_url)
    try:
        with make_session_factory(engine)() as session:
            return int(session.scalar(select(func.count()).select_from(Prediction)) or 0)
    finally:
        engine.dispose()


def _row(i: int) -> dict[str, Any]:
    from plant_node.db import utcnow

    now = utcnow()
    return {
        "id": f"row{i:06d}", "batch_id": "b", "baseline": "ai4i", "model_name": "m",
        "model_version": "1", "served_by": "current", "fallback": False, "role": "champion",
        "inputs": {"x": i}, "features": [float(i), float("nan")], "outputs": {"score": 0.5},
        "attributions": None, "latency_ms": 1.0, "explained_at": None, "created_at": now,
    }  # fmt: skip


def test_every_answered_prediction_is_logged_on_clean_shutdown(
    served_settings: NodeSettings, ai4i_records: list[dict[str, Any]]
) -> None:
    with TestClient(create_app(served_settings), headers=auth()) as client:
        ids = []
        for i in range(40):
            body = {"baseline": "ai4i", "records": ai4i_records[i % 5 : i % 5 + 3]}
            ids += [p["prediction_id"] for p in client.post("/v1/predict", json=body).json()
                    ["predictions"]]  # fmt: skip
    # The lifespan exit stopped the writer: it drained before the thread ended.

    assert len(set(ids)) == 120
    assert _count(served_settings) == 120


def test_a_prediction_is_readable_and_rateable_right_after_its_response(
    client: TestClient, ai4i_records: list[dict[str, Any]]
) -> None:
    for record in ai4i_records[:10]:
        pid = client.post("/v1/predict", json={"baseline": "ai4i", "record": record}).json()[
            "predictions"
        ][0]["prediction_id"]
        got = client.get(f"/v1/predictions/{pid}")
        rated = client.post("/v1/feedback", json={"prediction_id": pid, "verdict": "right"})

        assert got.status_code == 200 and got.json()["inputs"] == record
        assert rated.status_code == 201


def test_full_queue_writes_inline_and_stop_drains(
    node_settings: NodeSettings, session_factory: Any
) -> None:
    log = PredictionLog(session_factory, max_pending=2)
    gate = threading.Event()
    real_write = log._write

    def slow_write(ops: list[Any]) -> None:
        if threading.current_thread().name == "prediction-log":
            gate.wait(10)  # the writer thread is stuck until released; callers are not
        real_write(ops)

    log.start()
    log._write = slow_write  # type: ignore[method-assign]
    for i in range(10):  # the queue holds 2; the rest must be written by the callers
        log.add([_row(i)])
    inline_written = _count(node_settings)
    gate.set()
    assert log.stop(10)

    assert 5 <= inline_written < 10  # the writer holds the first, the queue two more
    assert _count(node_settings) == 10
    with session_factory() as session:
        row = session.get(Prediction, "row000003")
        assert row is not None and np.isnan(row.features[1])  # NaN survives the JSON column


def test_attributions_are_written_after_their_rows_with_the_time_they_became_readable(
    node_settings: NodeSettings, session_factory: Any
) -> None:
    log = PredictionLog(session_factory)
    log.start()
    log.add([_row(1), _row(2)])
    log.set_attributions([("row000001", {"method": "exact", "values": {"a": 1.0}})])
    assert log.flush(10)
    log.stop()

    with session_factory() as session:
        one, two = session.get(Prediction, "row000001"), session.get(Prediction, "row000002")
        assert one is not None and two is not None
        assert one.attributions == {"method": "exact", "values": {"a": 1.0}}
        assert one.explained_at is not None and one.explained_at >= one.created_at
        assert two.attributions is None and two.explained_at is None


def test_batched_explanations_equal_one_by_one_and_are_efficient(
    client: TestClient, ai4i_records: list[dict[str, Any]], cmapss_records: list[dict[str, Any]]
) -> None:
    flows = client.app.state.node.serving  # type: ignore[attr-defined]
    ai4i_pipe, cmapss_pipe = flows.pipelines["ai4i"], flows.pipelines["cmapss"]
    model = flows.runtimes["ai4i"].current
    items = ai4i_records[:9]

    batched = flows.explain_items(ai4i_pipe, model, items, defer=False)
    engines = cmapss_pipe.items(cmapss_records)
    sampled = flows.explain_items(cmapss_pipe, flows.runtimes["cmapss"].current, engines)

    for item, attr in zip(items, batched, strict=True):
        setup = ai4i_pipe.explain_setup(model, item)
        alone = shapley(setup.f, setup.x, setup.baseline)
        assert attr is not None and attr["method"] == "exact"
        assert list(attr["values"].values()) == pytest.approx(alone.values.tolist(), abs=1e-9)
        assert attr["value"] == pytest.approx(float(model.predict_rows([item])[1][0]), abs=1e-6)
        assert sum(attr["values"].values()) == pytest.approx(
            attr["value"] - attr["base_value"], abs=1e-6
        )
    assert set(batched[0]["values"]) == {"type", *ai4i.RAW_NUMERIC}
    for attr in sampled:
        assert attr is not None and attr["method"] == "permutation" and "stderr" in attr
        assert sum(attr["values"].values()) == pytest.approx(
            attr["value"] - attr["base_value"], abs=1e-4
        )


def test_one_bad_item_does_not_cost_the_batch_its_explanations(
    client: TestClient, ai4i_records: list[dict[str, Any]]
) -> None:
    flows = client.app.state.node.serving  # type: ignore[attr-defined]
    pipe, model = flows.pipelines["ai4i"], flows.runtimes["ai4i"].current
    bad = dict(ai4i_records[1], type="Z")  # not in the fitted vocabulary

    out = flows.explain_items(pipe, model, [ai4i_records[0], bad, ai4i_records[2]], defer=False)

    assert [a["method"] for a in out] == ["exact", "none", "exact"]
    assert "ValueError" in out[1]["error"]


def test_explanation_becomes_available_after_the_response(
    client: TestClient, ai4i_records: list[dict[str, Any]]
) -> None:
    flows = client.app.state.node.serving  # type: ignore[attr-defined]
    answered = [
        client.post("/v1/predict", json={"baseline": "ai4i", "record": r}).json()
        for r in ai4i_records[:12]
    ]
    assert flows.wait_explanations(10)

    for body in answered:
        pred = body["predictions"][0]
        assert pred["explanation"] == "pending"
        detail = client.get(f"/v1/predictions/{pred['prediction_id']}").json()
        attr = detail["attributions"]
        assert detail["explanation"] == "ready" and attr["value"] == pytest.approx(pred["score"])
        assert sum(attr["values"].values()) == pytest.approx(
            attr["value"] - attr["base_value"], abs=1e-6
        )


def test_explain_batch_groups_by_model(
    client: TestClient, ai4i_records: list[dict[str, Any]], cmapss_records: list[dict[str, Any]]
) -> None:
    flows = client.app.state.node.serving  # type: ignore[attr-defined]
    a = client.post("/v1/predict", json={"baseline": "ai4i", "records": ai4i_records[:2]}).json()
    c = client.post("/v1/predict", json={"baseline": "cmapss", "records": cmapss_records}).json()
    assert flows.wait_explanations(10)
    engines = flows.pipelines["cmapss"].items(cmapss_records)
    pendings = [
        PendingExplanation("ai4i", flows.runtimes["ai4i"].current,
                           [p["prediction_id"] for p in a["predictions"]], ai4i_records[:2]),
        PendingExplanation("cmapss", flows.runtimes["cmapss"].current,
                           [p["prediction_id"] for p in c["predictions"]], engines),
    ]  # fmt: skip

    flows.explain_batch(pendings)  # recomputes them: same rows, updated in place
    assert flows.flush_log()

    for body in (a, c):
        for pred in body["predictions"]:
            detail = client.get(f"/v1/predictions/{pred['prediction_id']}").json()
            assert detail["explanation"] == "ready"
            assert detail["attributions"]["value"] == pytest.approx(pred["score"], rel=1e-5)


def test_overloaded_explainer_marks_predictions_unavailable_never_pending_forever(
    client: TestClient, ai4i_records: list[dict[str, Any]]
) -> None:
    flows = client.app.state.node.serving  # type: ignore[attr-defined]
    real = flows._explain_queue
    flows._explain_queue = queue.Queue(maxsize=1)  # nobody takes from it: a full backlog
    try:
        bodies = [
            client.post("/v1/predict", json={"baseline": "ai4i", "record": r}).json()
            for r in ai4i_records[:3]
        ]
    finally:
        stuck, flows._explain_queue = flows._explain_queue, real
    ids = [b["predictions"][0]["prediction_id"] for b in bodies]

    assert [b["predictions"][0]["explanation"] for b in bodies] == [
        "pending", "unavailable", "unavailable"
    ]  # fmt: skip
    late = client.get(f"/v1/predictions/{ids[1]}").json()
    assert late["explanation"] == "unavailable" and "overloaded" in late["attributions"]["error"]
    assert _late(client) == 2.0  # the two left unexplained are counted, on /metrics
    flows.explain_batch([stuck.get_nowait()])  # the one that did get queued is explained
    assert flows.flush_log()
    assert client.get(f"/v1/predictions/{ids[0]}").json()["explanation"] == "ready"


def _late(client: TestClient) -> float:
    text = client.get("/metrics").text
    lines = [ln for ln in text.splitlines() if ln.startswith("millwright_node_explanations_late")]
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in lines if "_created" not in ln)


def test_explanations_past_their_deadline_are_counted_late(
    client: TestClient, ai4i_records: list[dict[str, Any]]
) -> None:
    flows = client.app.state.node.serving  # type: ignore[attr-defined]
    model = flows.runtimes["ai4i"].current
    on_time = PendingExplanation("ai4i", model, ["a", "b"], ai4i_records[:2])
    overdue = PendingExplanation(
        "ai4i", model, ["c", "d", "e"], ai4i_records[2:5],
        created=time.monotonic() - flows.settings.explain_deadline_s - 1,
    )  # fmt: skip

    flows.explain_batch([on_time, overdue])

    assert _late(client) == 3.0


def test_explain_lane_has_its_own_compiled_copy_made_on_first_use(
    client: TestClient, ai4i_records: list[dict[str, Any]]
) -> None:
    flows = client.app.state.node.serving  # type: ignore[attr-defined]
    model = flows.runtimes["ai4i"].current
    assert set(model._pools) == {"live"}  # nothing explained yet: no second copy

    flows.explain_items(flows.pipelines["ai4i"], model, ai4i_records[:1], defer=False)
    live = model.infer(model.featurize(ai4i_records[:4]))
    lane = model.infer(model.featurize(ai4i_records[:4]), lane="explain")

    assert set(model._pools) == {"live", "explain"}
    np.testing.assert_allclose(lane, live, rtol=1e-6)


def test_the_future_resolves_only_once_committed_and_fails_for_a_refused_row(
    node_settings: NodeSettings, session_factory: Any
) -> None:
    gate = threading.Event()
    log = PredictionLog(session_factory)
    real_write = log._write

    def gated_write(ops: list[Any]) -> None:
        gate.wait(10)
        real_write(ops)

    log._write = gated_write  # type: ignore[method-assign]
    log.start()
    first = log.add([_row(1)])
    pending = first.done()  # the writer has not committed yet
    gate.set()
    first.result(10)
    committed = _count(node_settings)
    duplicate = log.add([_row(1)])  # same primary key: the database refuses it
    error = duplicate.exception(10)
    log.stop()

    assert pending is False
    assert committed == 1
    assert error is not None  # the request answers 503, never a 200 without its row
