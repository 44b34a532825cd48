"""The node client round-trips predict, read and feedback, and rebuilds contract errors."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from federation.errors import ContractViolation, NotFound
from plant_node.client import NodeClient
from plant_node.replay import replay_requests


def test_client_against_the_app(client: TestClient) -> None:
    node = NodeClient(client=client)
    records = next(replay_requests("ai4i", "M", 1))

    answer = node.predict("ai4i", records)
    detail = node.get_prediction(answer.predictions[0].prediction_id)
    verdict = node.feedback(detail.prediction_id, "right")
    with pytest.raises(ContractViolation) as bad:
        node.predict("ai4i", [dict(records[0], torque_nm=-1.0)])
    with pytest.raises(NotFound):
        node.get_prediction("nope")

    assert detail.inputs == records[0]
    assert verdict.verdict == "right"
    assert bad.value.errors[0]["column"] == "torque_nm"


@pytest.mark.parametrize(("baseline", "plant"), [("ai4i", None), ("cmapss", "FD002")])
def test_replay_requests_shape(baseline: str, plant: str | None) -> None:
    batches: list[list[dict[str, Any]]] = list(replay_requests(baseline, plant, 3))

    assert len(batches) == 3
    assert all(len(b) == (1 if baseline == "ai4i" else 30) for b in batches)


def test_the_client_sends_its_key(served_settings: Any) -> None:
    from federation.errors import Forbidden, Unauthenticated
    from plant_node.main import create_app
    from tests.plant_node.keys import LINE_KEY

    records = next(replay_requests("ai4i", "M", 1))
    with TestClient(create_app(served_settings)) as raw:
        anonymous = NodeClient(client=raw)
        with pytest.raises(Unauthenticated):
            anonymous.predict("ai4i", records)
        line = NodeClient(client=raw, key=LINE_KEY)
        answer = line.predict("ai4i", records)
        with pytest.raises(Forbidden):
            line._check(raw.post("/v1/models/reload"))

    assert len(answer.predictions) == 1
