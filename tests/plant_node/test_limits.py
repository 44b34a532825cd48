"""Body limits: 413 problem+json before the body is buffered, per route, configurable."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi.testclient import TestClient

from plant_node.config import NodeSettings
from plant_node.limits import BodyLimit
from plant_node.main import create_app
from tests.plant_node.keys import auth


def test_oversized_bodies_are_413_problems_per_route(node_settings: NodeSettings) -> None:
    settings = node_settings.model_copy(
        update={"max_body_bytes": 2048, "max_predict_body_bytes": 8192}
    )
    with TestClient(create_app(settings), headers=auth()) as client:
        big_feedback = client.post("/v1/feedback", content=b"x" * 4096)
        small_predict = client.post("/v1/predict", content=b"{" + b" " * 4000 + b"}")
        big_predict = client.post("/v1/predict", content=b"x" * 9000)
        anonymous = client.post("/v1/predict", content=b"x" * 9000, headers={"Authorization": ""})

    assert big_feedback.status_code == 413
    assert big_feedback.headers["content-type"] == "application/problem+json"
    assert big_feedback.json()["code"] == "payload_too_large"
    assert "2,048" in big_feedback.json()["detail"]
    assert small_predict.status_code == 422  # under the predict limit: parsed and refused
    assert big_predict.status_code == 413 and "8,192" in big_predict.json()["detail"]
    assert anonymous.status_code == 413  # refused before anything reads it, key or not


def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit() -> None:
    chunks_sent = 0
    total_chunks = 1000  # 64 MB if it were all read

    async def receive() -> dict[str, Any]:
        nonlocal chunks_sent
        chunks_sent += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    app_saw: list[int] = []

    async def app(scope: Any, receive_: Any, send: Any) -> None:  # reads the whole body
        size = 0
        while True:
            message = await receive_()
            if message["type"] == "http.disconnect":
                app_saw.append(size)
                await send({"type": "http.response.start", "status": 500, "headers": []})
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    limited = BodyLimit(app, default=1_000_000, per_path={})
    scope = {"type": "http", "path": "/v1/outcomes", "headers": []}
    asyncio.run(limited(scope, receive, send))  # type: ignore[arg-type]

    assert chunks_sent == 16 < total_chunks  # 16 x 64 kB > 1 MB: stopped right there
    assert app_saw == [15 * 65536]  # the app never got the chunk that crossed the limit
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    body = json.loads(b"".join(m.get("body", b"") for m in sent if "body" in m))
    assert body["code"] == "payload_too_large"
