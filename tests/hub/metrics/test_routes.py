"""Metrics reports: ingest, de-duplication, late windows, filters, role scoping, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from federation.schemas.metrics_report import DriftScores
from hub.config import HubSettings
from hub.metrics.models import MetricsReportRecord
from hub.metrics.service import flatten
from tests.hub.fixtures import Tokens, auth, snapshot
from tests.hub.metrics.reports import body, report, window

API = "/api/v1"


def _post(client: TestClient, token: str, rep: Any, plant: str = "fd001", **headers: str) -> Any:
    payload = body(rep) if not isinstance(rep, dict) else rep
    return client.post(
        f"{API}/plants/{plant}/metrics-reports", json=payload, headers={**auth(token), **headers}
    )


def _list(client: TestClient, token: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"{API}/metrics", params=params, headers=auth(token))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_flatten_turns_every_number_into_one_observation() -> None:
    obs = list(flatten(report()))
    by_kind: dict[str, int] = {}
    for o in obs:
        by_kind[o.kind.value] = by_kind.get(o.kind.value, 0) + 1
    assert by_kind == {
        "estimated": 2,
        "realized": 1,
        "drift": 6,  # multivariate, s2 js/ks/psi/drifted_chunks, prediction psi
        "integrity": 7,  # null s3, stuck s4, missing/late/stuck_units/n_rows/suppressed
        "latency": 3,
        "alerts": 6,  # five counts plus raised by kind
    }
    est = [o for o in obs if o.kind == "estimated" and o.chunk == 0][0]
    assert (est.value, est.lower, est.upper) == (18.0, 16.0, 20.0)


def test_ingest_stores_the_report_and_its_observations(client: TestClient, tokens: Tokens) -> None:
    rep = report()
    r = _post(client, tokens.plant, rep)
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["report_id"] == str(rep.report_id)
    assert receipt["observations"] == 25 and receipt["duplicate"] is False
    assert (receipt["plant_id"], receipt["model_name"], receipt["model_version"]) == (
        "fd001",
        "turbofan-rul",
        "1.0",
    )

    estimated = _list(client, tokens.executive, kind="estimated", metric="rmse")["items"]
    assert [(o["chunk"], o["value"], o["lower"], o["upper"]) for o in estimated] == [
        (0, 18.0, 16.0, 20.0),
        (1, 18.5, 16.5, 20.5),
    ]
    assert estimated[0]["report_id"] == str(rep.report_id)
    realized = _list(client, tokens.executive, kind="realized")["items"]
    assert [(o["chunk"], o["value"], o["lower"]) for o in realized] == [(0, 19.0, None)]
    drift = _list(client, tokens.executive, kind="drift", subject="s2", metric="psi")["items"]
    assert [o["value"] for o in drift] == [0.3]

    stored = client.get(
        f"{API}/plants/fd001/metrics-reports/{rep.report_id}", headers=auth(tokens.plant)
    )
    assert stored.status_code == 200 and stored.json() == body(rep)


def test_resending_the_same_report_returns_the_first_receipt_and_changes_nothing(
    client: TestClient, tokens: Tokens, hub_settings: HubSettings
) -> None:
    first = _post(client, tokens.plant, report())
    before = snapshot(hub_settings)
    again = _post(client, tokens.plant, report())
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == {**first.json(), "duplicate": True}
    assert snapshot(hub_settings) == before


def test_same_report_id_with_other_content_is_a_conflict(
    client: TestClient, tokens: Tokens, hub_settings: HubSettings
) -> None:
    _post(client, tokens.plant, report(), **{"Idempotency-Key": "k1"})
    before = snapshot(hub_settings)
    changed = _post(client, tokens.plant, report(rmse=25.0))
    # A node that re-runs a window keeps the report id as its key: still a conflict.
    same_key = _post(client, tokens.plant, report(rmse=25.0), **{"Idempotency-Key": "k1"})
    for r in (changed, same_key):
        assert r.status_code == 409 and r.json()["code"] == "conflict"
        assert r.headers["content-type"] == "application/problem+json"
    assert snapshot(hub_settings) == before


def test_idempotency_key_replays_and_refuses_reuse_for_another_report(
    client: TestClient, tokens: Tokens, hub_settings: HubSettings
) -> None:
    first = _post(client, tokens.plant, report(), **{"Idempotency-Key": "k1"})
    replay = _post(client, tokens.plant, report(), **{"Idempotency-Key": "k1"})
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    before = snapshot(hub_settings)
    reused = _post(client, tokens.plant, report(day=1), **{"Idempotency-Key": "k1"})
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_mismatch"
    assert snapshot(hub_settings) == before


def test_late_and_out_of_order_windows_are_listed_by_window(
    client: TestClient, tokens: Tokens
) -> None:
    for day in (3, 0, 2, 1):
        assert _post(client, tokens.plant, report(day=day, rmse=10.0 + day)).status_code == 201
    items = _list(client, tokens.data_scientist, kind="estimated", metric="rmse")["items"]
    assert [o["value"] for o in items] == [10.0, 10.5, 11.0, 11.5, 12.0, 12.5, 13.0, 13.5]
    starts = [o["window_start"] for o in items]
    assert starts == sorted(starts)

    # Windows that start in [day 1, day 3): days 1 and 2 only.
    start, _ = window(1)
    end, _ = window(3)
    ranged = _list(
        client,
        tokens.data_scientist,
        kind="estimated",
        **{"from": start.isoformat(), "to": end.isoformat()},
    )["items"]
    assert [o["value"] for o in ranged] == [11.0, 11.5, 12.0, 12.5]


def test_filters_and_keyset_pages(client: TestClient, tokens: Tokens) -> None:
    _post(client, tokens.plant, report(day=0))
    _post(client, tokens.plant, report(day=1, model_version="1.1"))
    _post(client, tokens.admin, report("fd002", day=0, model_name="ai4i-clf"), plant="fd002")

    def values(**params: Any) -> list[tuple[str, str, str]]:
        items = _list(client, tokens.executive, kind="latency", metric="p95", **params)["items"]
        return [(o["plant_id"], o["model_name"], o["model_version"]) for o in items]

    assert values() == [
        ("fd001", "turbofan-rul", "1.0"),
        ("fd002", "ai4i-clf", "1.0"),
        ("fd001", "turbofan-rul", "1.1"),
    ]
    assert values(plant_id="fd002") == [("fd002", "ai4i-clf", "1.0")]
    assert values(model="turbofan-rul", model_version="1.1") == [("fd001", "turbofan-rul", "1.1")]
    assert values(model="nope") == []

    # Every observation exactly once across pages of 7, in (window_start, id) order.
    seen: list[int] = []
    token = None
    while True:
        params: dict[str, Any] = {"page_size": 7, "plant_id": "fd001"}
        if token:
            params["page_token"] = token
        page = _list(client, tokens.admin, **params)
        seen.extend(o["id"] for o in page["items"])
        token = page.get("next_page_token")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 50
    # A token is bound to the filters that produced it.
    first = _list(client, tokens.admin, page_size=1, plant_id="fd001")["next_page_token"]
    r = client.get(
        f"{API}/metrics",
        params={"page_token": first, "plant_id": "fd002"},
        headers=auth(tokens.admin),
    )
    assert r.status_code == 422 and "different filters" in r.json()["detail"]
    bad_kind = client.get(f"{API}/metrics", params={"kind": "vibes"}, headers=auth(tokens.admin))
    assert bad_kind.status_code == 422 and bad_kind.json()["errors"][0]["field"] == "query.kind"


def test_plant_sees_only_its_own_metrics(client: TestClient, tokens: Tokens) -> None:
    _post(client, tokens.plant, report())
    _post(client, tokens.admin, report("fd002"), plant="fd002")

    own = _list(client, tokens.plant, kind="latency", metric="p50")["items"]
    assert [o["plant_id"] for o in own] == ["fd001"]
    summary = client.get(f"{API}/metrics/summary", headers=auth(tokens.plant)).json()
    assert {o["plant_id"] for o in summary["items"]} == {"fd001"}
    other = client.get(f"{API}/metrics", params={"plant_id": "fd002"}, headers=auth(tokens.plant))
    assert other.status_code == 403 and other.json()["code"] == "forbidden"
    everyone = _list(client, tokens.executive, kind="latency", metric="p50")["items"]
    assert sorted(o["plant_id"] for o in everyone) == ["fd001", "fd002"]


@pytest.mark.parametrize("role", ["executive", "data_scientist"])
def test_read_only_roles_cannot_submit(
    client: TestClient, tokens: Tokens, hub_settings: HubSettings, role: str
) -> None:
    before = snapshot(hub_settings)
    r = _post(client, tokens.for_role(role), report())
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert snapshot(hub_settings) == before


def test_summary_holds_the_latest_window_of_every_series(
    client: TestClient, tokens: Tokens
) -> None:
    # The newest window arrives first; a late, older window must not replace it.
    _post(client, tokens.plant, report(day=5, rmse=30.0))
    _post(client, tokens.plant, report(day=1, rmse=10.0))
    _post(client, tokens.admin, report("fd002", day=2, rmse=20.0), plant="fd002")
    r = client.get(
        f"{API}/metrics/summary",
        params={"kind": "estimated", "metric": "rmse"},
        headers=auth(tokens.executive),
    )
    assert r.status_code == 200
    latest = {o["plant_id"]: (o["chunk"], o["value"]) for o in r.json()["items"]}
    assert latest == {"fd001": (1, 30.5), "fd002": (1, 20.5)}
    assert r.json()["truncated"] is False


def _extra_top(payload: dict[str, Any]) -> None:
    payload["raw_rows"] = [[1.0, 2.0]]


def _extra_nested(payload: dict[str, Any]) -> None:
    payload["chunks"][0]["unit_id"] = "unit-17"


def _wrong_type(payload: dict[str, Any]) -> None:
    payload["n_rows"] = "many"
    payload["latency_ms"]["p50"] = "fast"


def _below_policy(payload: dict[str, Any]) -> None:
    payload["n_rows"] = 10


def _negative_score(payload: dict[str, Any]) -> None:
    payload["drift"][0]["scores"]["psi"] = -1.0


@pytest.mark.parametrize(
    ("mutate", "fields"),
    [
        (_extra_top, {"body.raw_rows"}),
        (_extra_nested, {"body.chunks.0.unit_id"}),
        (_wrong_type, {"body.n_rows", "body.latency_ms.p50"}),
        (_below_policy, {"body"}),
        (_negative_score, {"body.drift.0.scores.psi"}),
    ],
    ids=["extra-field", "nested-extra-field", "wrong-types", "below-row-minimum", "negative"],
)
def test_reports_failing_the_schema_are_refused_and_change_nothing(
    client: TestClient,
    tokens: Tokens,
    hub_settings: HubSettings,
    mutate: Any,
    fields: set[str],
) -> None:
    payload = body(report())
    mutate(payload)
    before = snapshot(hub_settings)
    r = _post(client, tokens.plant, payload)
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"
    assert r.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in r.json()["errors"]} == fields
    assert snapshot(hub_settings) == before


def test_unknown_plant_and_mismatched_plant_are_refused(
    client: TestClient, tokens: Tokens, hub_settings: HubSettings
) -> None:
    before = snapshot(hub_settings)
    unknown = _post(client, tokens.admin, report("nope"), plant="nope")
    mismatch = _post(client, tokens.admin, report("fd002"), plant="fd001")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    assert mismatch.status_code == 422 and mismatch.json()["errors"][0]["field"] == "body.plant_id"
    assert "fd002" in mismatch.json()["detail"]
    assert snapshot(hub_settings) == before


def test_a_concurrent_copy_of_the_same_report_is_answered_as_a_duplicate(
    client: TestClient, tokens: Tokens, session_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.metrics import service

    first = _post(client, tokens.plant, report()).json()
    # Simulate losing the race: the pre-insert lookup misses the row the other request wrote.
    real = service._get_report
    calls = iter([None])
    monkeypatch.setattr(service, "_get_report", lambda s, p, rid: next(calls, real(s, p, rid)))
    with session_factory() as session:
        receipt = service.ingest_report(
            session=session, plant_id="fd001", report=report(), actor="test"
        )
        count = session.scalar(select(func.count()).select_from(MetricsReportRecord))
    assert receipt.duplicate is True and str(receipt.report_id) == first["report_id"]
    assert count == 1


def test_summary_keeps_a_series_that_the_newest_report_lacks(
    client: TestClient, tokens: Tokens
) -> None:
    # Labels lag: the newest window has estimates only, so the latest realized value is older.
    _post(client, tokens.plant, report(day=1, rmse=10.0))
    newest = report(day=2, rmse=12.0)
    unlabelled = [
        c.model_copy(
            update={"metrics": [m.model_copy(update={"realized": None}) for m in c.metrics]}
        )
        for c in newest.chunks
    ]
    _post(client, tokens.plant, newest.model_copy(update={"chunks": unlabelled}))
    items = client.get(
        f"{API}/metrics/summary", params={"metric": "rmse"}, headers=auth(tokens.plant)
    ).json()["items"]
    latest = {o["kind"]: (o["window_start"][:10], o["value"]) for o in items}
    assert latest == {"estimated": ("2026-11-03", 12.5), "realized": ("2026-11-02", 11.0)}


def test_concurrent_deliveries_neither_fail_nor_lose_the_latest_value(
    client: TestClient, tokens: Tokens, session_factory: Any
) -> None:
    import threading

    from hub.metrics import service

    errors: list[str] = []

    def deliver(day: int) -> None:
        try:
            with session_factory() as session:
                service.ingest_report(
                    session=session, plant_id="fd001", report=report(day=day), actor="test"
                )
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    # Six windows in random-ish order, each delivered twice at the same time.
    threads = [threading.Thread(target=deliver, args=(d,)) for d in (4, 1, 5, 0, 3, 2) * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(MetricsReportRecord)) == 6
    summary = client.get(
        f"{API}/metrics/summary", params={"kind": "latency"}, headers=auth(tokens.plant)
    ).json()["items"]
    assert {o["window_start"][:10] for o in summary} == {"2026-11-06"}


def _late_labels(rep: Any, revision: int, realized: float) -> dict[str, Any]:
    """The same window re-sent once chunk 1's labels arrived."""
    payload = body(rep)
    payload["revision"] = revision
    payload["chunks"][1]["metrics"][0] |= {"realized": realized, "n_labels": 60}
    return payload


def test_a_higher_revision_replaces_the_report_and_its_observations(
    client: TestClient, tokens: Tokens, hub_settings: HubSettings
) -> None:
    first = _post(client, tokens.plant, report())
    revised = _post(client, tokens.plant, _late_labels(report(), 1, 21.5))

    assert first.status_code == 201 and revised.status_code == 201
    assert revised.json()["revision"] == 1 and revised.json()["duplicate"] is False
    assert revised.json()["observations"] == first.json()["observations"] + 1
    realized = _list(client, tokens.executive, kind="realized", metric="rmse")["items"]
    assert sorted((o["chunk"], o["value"]) for o in realized) == [(0, 19.0), (1, 21.5)]
    assert len(_list(client, tokens.executive, kind="estimated")["items"]) == 2  # not doubled
    summary = client.get(
        f"{API}/metrics/summary", params={"kind": "realized"}, headers=auth(tokens.executive)
    ).json()["items"]
    assert [(o["chunk"], o["value"]) for o in summary] == [(1, 21.5)]
    rid = first.json()["report_id"]
    doc = client.get(f"{API}/plants/fd001/metrics-reports/{rid}", headers=auth(tokens.plant))
    assert doc.json()["revision"] == 1

    # the first revision delivered late changes nothing; the same revision changed is a 409
    before = snapshot(hub_settings)
    stale = _post(client, tokens.plant, report())
    clash = _post(client, tokens.plant, _late_labels(report(), 1, 30.0))
    assert stale.status_code == 200 and stale.json()["revision"] == 1
    assert stale.json()["duplicate"] is True
    assert clash.status_code == 409 and clash.json()["code"] == "conflict"
    assert snapshot(hub_settings) == before


def test_a_series_the_revision_drops_falls_back_to_its_newest_other_value(
    client: TestClient, tokens: Tokens
) -> None:
    _post(client, tokens.plant, report(day=0))
    _post(client, tokens.plant, report(day=1, prediction_drift=DriftScores(psi=0.09)))
    revised = body(report(day=1))
    revised |= {"revision": 1, "prediction_drift": None}
    assert _post(client, tokens.plant, revised).status_code == 201

    r = client.get(
        f"{API}/metrics/summary",
        params={"kind": "drift", "metric": "psi", "subject": "prediction"},
        headers=auth(tokens.executive),
    )
    assert [(o["window_start"][:10], o["value"]) for o in r.json()["items"]] == [
        (window(0)[0].date().isoformat(), 0.05)
    ]
