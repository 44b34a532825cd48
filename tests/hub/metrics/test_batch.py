"""Batch ingestion, the daily rollup kept at ingest, and the aggregate reads built on it."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from federation.schemas.metrics_report import ImpactCounts, ImpactMethod
from tests.hub.fixtures import Tokens, auth
from tests.hub.metrics.reports import body, report


def _impact(caught: int) -> ImpactCounts:
    return ImpactCounts(
        method=ImpactMethod.RUL_THRESHOLD,
        units=20,
        min_units_policy=10,
        caught=caught,
        missed=1,
        false_alarms=2,
    )


def test_batch_stores_rolls_up_and_replays(client: TestClient, tokens: Tokens) -> None:
    # Prepare: three days of reports, the last two with impact counts
    reps = [report(day=d, rmse=10.0 + d, impact=_impact(d) if d else None) for d in range(3)]
    payload = {"reports": [body(r) for r in reps]}
    headers = auth(tokens.plant) | {"Idempotency-Key": "batch-1"}

    # Execute
    first = client.post("/api/v1/plants/fd001/metrics-reports/batch", json=payload, headers=headers)
    replay = client.post(
        "/api/v1/plants/fd001/metrics-reports/batch", json=payload, headers=headers
    )
    resend = client.post(
        "/api/v1/plants/fd001/metrics-reports/batch", json=payload, headers=auth(tokens.plant)
    )

    # Assert: stored once; the replay answers as the first delivery, a re-send as duplicates
    assert first.status_code == 201, first.text
    assert first.json()["accepted"] == 3 and first.json()["duplicates"] == 0
    assert replay.json()["receipts"] == first.json()["receipts"]
    assert resend.json()["duplicates"] == 3
    params = {"model": "turbofan-rul", "metric": "rmse", "from": "2026-11-01", "to": "2026-11-03"}
    daily = client.get("/api/v1/metrics/daily", params=params, headers=auth(tokens.executive))
    assert daily.status_code == 200, daily.text
    estimated = [(p["day"], p["mean"]) for p in daily.json()["items"] if p["kind"] == "estimated"]
    expected = []
    for r in reps:
        values = [m.estimated for c in r.chunks for m in c.metrics if m.estimated is not None]
        expected.append((r.window_start.date().isoformat(), sum(values) / len(values)))
    assert estimated == expected
    monthly = client.get(
        "/api/v1/metrics/monthly",
        params={"kind": "impact", "from": "2026-11-01", "to": "2026-11-30"},
        headers=auth(tokens.executive),
    ).json()["items"]
    assert {m["metric"]: m["total"] for m in monthly} == {
        "caught": 3.0,
        "missed": 2.0,
        "false_alarms": 4.0,
        "units": 40.0,
    }


def test_a_higher_revision_in_a_batch_replaces_its_rollup(
    client: TestClient, tokens: Tokens
) -> None:
    first = report(day=0, rmse=10.0)
    revised = report(day=0, rmse=30.0, revision=1)
    url = "/api/v1/plants/fd001/metrics-reports/batch"

    client.post(url, json={"reports": [body(first)]}, headers=auth(tokens.plant))
    r = client.post(url, json={"reports": [body(revised)]}, headers=auth(tokens.plant))

    assert r.status_code == 201 and r.json()["accepted"] == 1
    params = {
        "model": "turbofan-rul",
        "metric": "rmse",
        "from": "2026-11-01",
        "to": "2026-11-01",
        "kind": "estimated",
    }
    items = client.get("/api/v1/metrics/daily", params=params, headers=auth(tokens.admin)).json()
    values = [m.estimated for c in revised.chunks for m in c.metrics if m.estimated is not None]
    assert [(p["mean"], p["count"]) for p in items["items"]] == [
        (sum(values) / len(values), len(values))
    ]


def test_bad_batches_are_refused_whole(client: TestClient, tokens: Tokens) -> None:
    url = "/api/v1/plants/fd001/metrics-reports/batch"
    twice = client.post(
        url, json={"reports": [body(report(day=0))] * 2}, headers=auth(tokens.plant)
    )
    foreign = client.post(
        url,
        json={"reports": [body(report(day=0)), body(report("fd002", day=1))]},
        headers=auth(tokens.admin),
    )
    other_plant = client.post(
        "/api/v1/plants/fd002/metrics-reports/batch",
        json={"reports": [body(report("fd002"))]},
        headers=auth(tokens.plant),
    )
    inverted = client.get(
        "/api/v1/metrics/daily",
        params={"model": "m", "metric": "rmse", "from": "2026-11-05", "to": "2026-11-01"},
        headers=auth(tokens.admin),
    )

    assert twice.status_code == 422 and twice.json()["code"] == "invalid_input"
    assert foreign.status_code == 422
    assert other_plant.status_code == 403
    assert inverted.status_code == 422 and "before it starts" in inverted.json()["detail"]
    stored = client.get("/api/v1/metrics/summary", headers=auth(tokens.admin)).json()["items"]
    assert stored == []
    assert dt.date(2026, 11, 1)  # the fixture window
