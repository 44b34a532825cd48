"""Health, readiness, Prometheus metrics by route template, and JSON access logs."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from hub.observability import JsonFormatter
from tests.hub.fixtures import Tokens, auth

SERIES = (
    'millwright_hub_requests_total{method="GET",route="/api/v1/plants/{plant_id}",status="200"}'
)


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_metrics_count_requests_by_route_template(client: TestClient, tokens: Tokens) -> None:
    def count() -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(SERIES):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = count()
    client.get("/api/v1/plants/fd001", headers=auth(tokens.admin))
    client.get("/api/v1/plants/fd002", headers=auth(tokens.admin))
    text = client.get("/metrics").text
    assert count() == before + 2
    assert "millwright_hub_request_duration_seconds_bucket" in text


def test_access_log_is_structured(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="millwright.hub.access"):
        response = client.get("/healthz", headers={"X-Request-ID": "req-42"})
    record = next(r for r in caplog.records if r.name == "millwright.hub.access")
    line = json.loads(JsonFormatter().format(record))
    assert response.headers["x-request-id"] == "req-42"
    assert line["route"] == "/healthz" and line["status"] == 200 and line["request_id"] == "req-42"
    assert line["level"] == "info" and "duration_ms" in line
