"""Every route answers malformed JSON with 422 and unknown ids with 404, as problem+json.

Generated from the app's OpenAPI route table like the authorization matrix, so new
routes are held to the same contract.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.hub.auth.test_matrix import route_table
from tests.hub.fixtures import Tokens, auth
from tests.hub.metrics.reports import body as metrics_body
from tests.hub.metrics.reports import report as metrics_report

UNKNOWN = {
    "plant_id": "no-such-plant",
    "model_name": "no-such-model",
    "version": "0.0.0",
    "version_id": "987654",
    "other_id": "987654",
    "recipe_id": "987654",
    "token_id": "987654",
    "digest": "0" * 64,
    "alias": "shadow",  # champion answers 409 promotion_required before any lookup
    "key": "no-such-tag",
    "report_id": "00000000-0000-0000-0000-000000000000",
    "campaign_id": "999999",
    "promotion_id": "987654",
    "policy_id": "no-such-policy",
    "policy_version": "987654",
    "policy_ref": "no-such-policy@1",
    "rollout_id": "987654",
    "rollback_id": "987654",
    "delivery_id": "987654",
    "webhook_id": "987654",
    "request_id": "no-such-request",
}
# Routes whose path names no stored entity, or that create the entity the path names.
NO_404 = {
    ("PUT", "/api/v1/artifacts/sha256/{digest}"),
}


def _json_routes(app: FastAPI) -> set[tuple[str, str]]:
    schema = app.openapi()
    out = set()
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                out.add((method.upper(), path))
    return out


def test_malformed_json_is_422_everywhere(client: TestClient, app: FastAPI, tokens: Tokens) -> None:
    failures = []
    for method, path in sorted(_json_routes(app)):
        url = re.sub(r"\{(\w+)\}", lambda m: {"plant_id": "fd001"}.get(m.group(1), "1"), path)
        r = client.request(
            method,
            url,
            content=b'{"broken": ',
            headers={**auth(tokens.admin), "Content-Type": "application/json"},
        )
        if r.status_code != 422 or r.json().get("code") != "invalid_input":
            failures.append(f"{method} {path}: {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)


def test_unknown_ids_are_404_everywhere(client: TestClient, app: FastAPI, tokens: Tokens) -> None:
    failures = []
    checked = 0
    for method, path in sorted(route_table(app)):
        if "{" not in path or (method, path) in NO_404:
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: UNKNOWN[m.group(1)], path)
        kwargs: dict[str, object] = {"headers": auth(tokens.admin)}
        if method in {"PUT", "PATCH"}:
            kwargs["json"] = (
                {"value": "x"}
                if "/tags/" in path
                else ({"version_id": 1} if method == "PUT" else {})
            )
        if method == "POST" and path.endswith("/metrics-reports"):
            kwargs["json"] = metrics_body(metrics_report(UNKNOWN["plant_id"]))
        elif method == "POST" and "/promotions/" in path:
            kwargs["json"] = {"signing_secret": "x"}
        elif method == "POST" and path.endswith("/metrics-reports/batch"):
            kwargs["json"] = {"reports": [metrics_body(metrics_report(UNKNOWN["plant_id"]))]}
        elif method == "POST" and path.endswith("/retraining-requests"):
            kwargs["json"] = {
                "id": "r1", "model": "turbofan-rul", "version_id": 1, "policy": "p@1",
                "trigger": "drift", "condition": "drift_sustained",
                "fired_at": "2026-01-01T00:00:00Z",
            }
        elif method == "POST" and "/rollouts/" in path:
            kwargs["json"] = {"reason": "x"}
        elif method == "POST" and "/webhooks/" in path:
            kwargs["json"] = {"grace_seconds": 1}
        elif method == "POST":
            kwargs["json"] = {
                "events": [{"id": "e", "kind": "k", "occurred_at": "2026-01-01T00:00:00Z"}]
            }
        r = client.request(method, url, **kwargs)  # type: ignore[arg-type]
        checked += 1
        if r.status_code != 404 or r.json().get("code") != "not_found":
            failures.append(f"{method} {path}: {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)
    assert checked >= 20
