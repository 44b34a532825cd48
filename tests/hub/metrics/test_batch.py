"""Batch ingestion, the daily rollup kept at ingest, and the aggregate reads built on it."""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI
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


def _count(client: TestClient, token: str, plant: str) -> int:
    items = client.get(
        "/api/v1/metrics",
        params={"plant_id": plant, "kind": "integrity", "metric": "n_rows"},
        headers=auth(token),
    ).json()["items"]
    return len(items)


def test_report_ids_are_per_plant_and_redelivery_stores_nothing_twice(
    client: TestClient, tokens: Tokens
) -> None:
    # Prepare: two plants whose reports carry the same ids (ids are unique per plant)
    mine = [report("fd001", day=d) for d in range(3)]
    theirs = [r.model_copy(update={"plant_id": "fd002"}) for r in mine]
    assert [r.report_id for r in theirs] == [r.report_id for r in mine]
    url = "/api/v1/plants/{}/metrics-reports/batch"

    # Execute: each plant's batch, then fd001's again with and without its key
    key = auth(tokens.admin) | {"Idempotency-Key": "fd001-1"}
    first = client.post(url.format("fd001"), json={"reports": [body(r) for r in mine]}, headers=key)
    other = client.post(
        url.format("fd002"), json={"reports": [body(r) for r in theirs]}, headers=auth(tokens.admin)
    )
    replay = client.post(
        url.format("fd001"), json={"reports": [body(r) for r in mine]}, headers=key
    )
    resend = client.post(
        url.format("fd001"),
        json={"reports": [body(r) for r in [*mine, report("fd001", day=3)]]},
        headers=auth(tokens.admin),
    )

    # Assert: another plant's same id is its own report; redelivery adds only the new one
    assert first.status_code == 201 and first.json()["accepted"] == 3, first.text
    assert other.status_code == 201 and other.json()["accepted"] == 3, other.text
    assert replay.json() == first.json()
    assert (resend.json()["accepted"], resend.json()["duplicates"]) == (1, 3)
    assert [r["duplicate"] for r in resend.json()["receipts"]] == [True, True, True, False]
    assert _count(client, tokens.admin, "fd001") == 4
    assert _count(client, tokens.admin, "fd002") == 3


def test_a_bad_report_is_named_by_its_index_and_nothing_of_the_batch_is_written(
    client: TestClient, tokens: Tokens
) -> None:
    url = "/api/v1/plants/fd001/metrics-reports/batch"
    stored = report(day=0, rmse=10.0)
    assert client.post(url, json={"reports": [body(stored)]}, headers=auth(tokens.plant)).is_success
    before = client.get("/api/v1/metrics/summary", headers=auth(tokens.admin)).json()
    invalid = [body(report(day=1)), body(report(day=2)), body(report(day=3))]
    invalid[2]["window_end"] = "2026-10-01T00:00:00Z"  # before its start
    # report 1 reuses a stored id at the same revision with other content
    conflicting = [body(report(day=4)), body(report(day=0, rmse=99.0))]

    bad = client.post(url, json={"reports": invalid}, headers=auth(tokens.plant))
    clash = client.post(url, json={"reports": conflicting}, headers=auth(tokens.plant))

    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in bad.json()["errors"]] == ["body.reports.2"]
    assert clash.status_code == 409 and clash.json()["code"] == "conflict"
    assert "report 1 of the batch" in clash.json()["detail"]
    assert client.get("/api/v1/metrics/summary", headers=auth(tokens.admin)).json() == before
    assert _count(client, tokens.admin, "fd001") == 1


def test_batch_size_is_bounded_in_reports_and_bytes(
    client: TestClient, tokens: Tokens, app: FastAPI
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"max_batch_size": 2})
    url = "/api/v1/plants/fd001/metrics-reports/batch"
    three = {"reports": [body(report(day=d)) for d in range(3)]}
    huge = b'{"reports": [' + b" " * (9 * 1024 * 1024) + b"]}"  # past the 8 MiB batch limit

    many = client.post(url, json=three, headers=auth(tokens.plant))
    large = client.post(
        url, content=huge, headers=auth(tokens.plant) | {"Content-Type": "application/json"}
    )

    assert many.status_code == 422 and "at most 2" in many.json()["detail"]
    assert large.status_code == 413 and large.json()["code"] == "payload_too_large"
    assert "MAX_BATCH_BODY_BYTES" in large.json()["detail"]
    assert _count(client, tokens.admin, "fd001") == 0


def test_an_older_batch_never_replaces_the_latest_value(client: TestClient, tokens: Tokens) -> None:
    url = "/api/v1/plants/fd001/metrics-reports/batch"
    newest = report(day=5, rmse=25.0)
    older = [report(day=d, rmse=10.0 + d) for d in (3, 1, 4)]

    client.post(url, json={"reports": [body(newest)]}, headers=auth(tokens.plant))
    client.post(url, json={"reports": [body(r) for r in older]}, headers=auth(tokens.plant))

    summary = client.get(
        "/api/v1/metrics/summary",
        params={"kind": "estimated", "metric": "rmse"},
        headers=auth(tokens.admin),
    ).json()["items"]
    assert [(s["window_end"][:10], s["value"]) for s in summary] == [
        (newest.chunks[-1].end.date().isoformat(), newest.chunks[-1].metrics[0].estimated)
    ]
