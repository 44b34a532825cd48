"""Authorization matrix: every route of the app × every role (plus no token).

The routes come from the app's OpenAPI route table, so a new route that is missing from
``EXPECTED`` fails this test until someone decides who may call it.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.schemas.auth import Role
from tests.hub import factories
from tests.hub.fixtures import Tokens, auth

PUBLIC = "public"
A, D, E, P = Role.ADMIN, Role.DATA_SCIENTIST, Role.EXECUTIVE, Role.PLANT
BLOB = b"matrix-artifact"
DIGEST = hashlib.sha256(BLOB).hexdigest()

# (method, path template) -> roles allowed. P means "a plant token, for its own plant or
# for artifacts assigned to it"; the same route for another plant must answer 403.
EXPECTED: dict[tuple[str, str], set[Role] | str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("POST", "/api/v1/plants"): {A},
    ("GET", "/api/v1/plants"): {A, D, E},
    ("GET", "/api/v1/plants/{plant_id}"): {A, D, E, P},
    ("PATCH", "/api/v1/plants/{plant_id}"): {A},
    ("POST", "/api/v1/models"): {A, D},
    ("GET", "/api/v1/models"): {A, D, E},
    ("GET", "/api/v1/models/{model_name}"): {A, D, E},
    ("GET", "/api/v1/models/{model_name}/versions/{version}"): {A, D, E},
    ("PUT", "/api/v1/artifacts/sha256/{digest}"): {A, D},
    ("GET", "/api/v1/artifacts/sha256/{digest}"): {A, D, P},
    ("GET", "/api/v1/artifacts/sha256/{digest}/metadata"): {A, D, P},
    ("POST", "/api/v1/versions"): {A, D},
    ("POST", "/api/v1/versions/batch"): {A, D},
    ("GET", "/api/v1/versions"): {A, D, E},
    ("GET", "/api/v1/versions/{version_id}"): {A, D, E},
    ("GET", "/api/v1/versions/{version_id}/diff/{other_id}"): {A, D, E},
    ("PUT", "/api/v1/versions/{version_id}/tags/{key}"): {A, D},
    ("DELETE", "/api/v1/versions/{version_id}/tags/{key}"): {A, D},
    ("GET", "/api/v1/plants/{plant_id}/aliases"): {A, D, E, P},
    ("GET", "/api/v1/plants/{plant_id}/aliases/{model_name}/{alias}"): {A, D, E, P},
    ("PUT", "/api/v1/plants/{plant_id}/aliases/{model_name}/{alias}"): {A, D},
    ("DELETE", "/api/v1/plants/{plant_id}/aliases/{model_name}/{alias}"): {A, D},
    ("GET", "/api/v1/plants/{plant_id}/assignments"): {A, D, E, P},
    ("POST", "/api/v1/plants/{plant_id}/events"): {A, P},
    ("GET", "/api/v1/plants/{plant_id}/events"): {A, D, E, P},
    ("POST", "/api/v1/plants/{plant_id}/metrics-reports"): {A, P},
    ("GET", "/api/v1/plants/{plant_id}/metrics-reports/{report_id}"): {A, D, E, P},
    ("GET", "/api/v1/metrics"): {A, D, E, P},
    ("GET", "/api/v1/metrics/summary"): {A, D, E, P},
    ("POST", "/api/v1/plants/{plant_id}/metrics-reports/batch"): {A, P},
    ("GET", "/api/v1/metrics/daily"): {A, D, E, P},
    ("GET", "/api/v1/metrics/monthly"): {A, D, E, P},
    ("POST", "/api/v1/recipes"): {A, D},
    ("GET", "/api/v1/recipes"): {A, D, E},
    ("GET", "/api/v1/recipes/{recipe_id}"): {A, D, E},
    ("PATCH", "/api/v1/recipes/{recipe_id}"): {A, D},
    ("POST", "/api/v1/recipes/{recipe_id}/publish"): {A, D},
    ("POST", "/api/v1/campaigns"): {A, D},
    ("GET", "/api/v1/campaigns"): {A, D, E},
    ("GET", "/api/v1/campaigns/{campaign_id}"): {A, D, E},
    ("POST", "/api/v1/campaigns/{campaign_id}/cancel"): {A, D},
    ("GET", "/api/v1/whoami"): {A, D, E, P},
    ("POST", "/api/v1/tokens"): {A},
    ("GET", "/api/v1/tokens"): {A},
    ("DELETE", "/api/v1/tokens/{token_id}"): {A},
    ("POST", "/api/v1/users"): {A},
    ("GET", "/api/v1/users"): {A},
    ("POST", "/api/v1/policies"): {A},
    ("GET", "/api/v1/policies"): {A, D, E},
    ("GET", "/api/v1/policies/diff"): {A, D, E},
    ("GET", "/api/v1/policies/{policy_ref}"): {A, D, E},
    ("GET", "/api/v1/policies/{policy_id}/versions/{policy_version}"): {A, D, E},
    ("POST", "/api/v1/promotions"): {A, D},
    ("GET", "/api/v1/promotions"): {A, D, E},
    ("POST", "/api/v1/promotions/break-glass"): {A},
    ("GET", "/api/v1/promotions/{promotion_id}"): {A, D, E},
    ("POST", "/api/v1/promotions/{promotion_id}/approve"): {A, D, E},
    ("POST", "/api/v1/promotions/{promotion_id}/reject"): {A, D, E},
    ("GET", "/api/v1/plants/{plant_id}/lifecycle"): {A, D, E, P},
    ("POST", "/api/v1/rollouts"): {A, D},
    ("GET", "/api/v1/rollouts"): {A, D, E},
    ("GET", "/api/v1/rollouts/{rollout_id}"): {A, D, E},
    ("POST", "/api/v1/rollouts/{rollout_id}/pause"): {A, D},
    ("POST", "/api/v1/rollouts/{rollout_id}/resume"): {A, D},
    ("POST", "/api/v1/rollouts/{rollout_id}/abort"): {A, D},
    ("POST", "/api/v1/rollbacks"): {A, D},
    ("GET", "/api/v1/rollbacks/{rollback_id}"): {A, D, E},
    ("GET", "/api/v1/inventory"): {A, D, E},
    ("POST", "/api/v1/webhooks"): {A},
    ("GET", "/api/v1/webhooks"): {A},
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): {A},
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): {A},
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): {A},
    ("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret"): {A},
    ("GET", "/api/v1/audit"): {A, E},
    ("GET", "/api/v1/audit/verify"): {A, E},
    ("POST", "/api/v1/plants/{plant_id}/retraining-requests"): {A, P},
    ("GET", "/api/v1/retraining-requests"): {A, D, E},
    ("GET", "/api/v1/plants/{plant_id}/retraining-requests/{request_id}"): {A, D, E, P},
    ("GET", "/api/v1/plants/{plant_id}/retraining-requests/{request_id}/chain"): {A, D, E, P},
    ("GET", "/api/v1/versions/{version_id}/retraining-chain"): {A, D, E},
}

PARAMS = {
    "plant_id": "fd001",
    "model_name": "turbofan-rul",
    "version": "1.0",
    "version_id": "1",
    "other_id": "1",
    "recipe_id": "1",
    "campaign_id": "1",
    "token_id": "999",
    "digest": DIGEST,
    "alias": "champion",
    "key": "stage",
    "report_id": "00000000-0000-0000-0000-000000000000",
    "promotion_id": "1",
    "policy_id": "promotion-default",
    "policy_version": "1",
    "policy_ref": "promotion-default@1",
    "rollout_id": "1",
    "rollback_id": "1",
    "webhook_id": "1",
    "delivery_id": "1",
    "request_id": "r1",
}


def route_table(app: FastAPI) -> set[tuple[str, str]]:
    schema = app.openapi()
    return {(m.upper(), path) for path, ops in schema["paths"].items() for m in ops}


def _url(path: str, **override: str) -> str:
    values = {**PARAMS, **override}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _call(client: TestClient, method: str, url: str, headers: dict[str, str]) -> int:
    kwargs: dict[str, object] = {"headers": headers}
    if method in {"POST", "PUT", "PATCH"}:
        if "/artifacts/" in url:
            kwargs["content"] = BLOB
        else:
            kwargs["json"] = {}
    return client.request(method, url, **kwargs).status_code  # type: ignore[arg-type]


def test_every_route_is_in_the_matrix(app: FastAPI) -> None:
    routes = route_table(app)
    missing = routes - set(EXPECTED)
    stale = set(EXPECTED) - routes
    assert not missing, f"routes without an authorization decision: {sorted(missing)}"
    assert not stale, f"matrix rows for routes that no longer exist: {sorted(stale)}"


@pytest.fixture
def seeded(client: TestClient, app: FastAPI, tokens: Tokens) -> Tokens:
    # A version for fd001 that uses DIGEST, so fd001's token may read that artifact.
    with app.state.session_factory() as session:
        factories.model(session)
    h = auth(tokens.admin)
    assert (
        client.put(f"/api/v1/artifacts/sha256/{DIGEST}", content=BLOB, headers=h).status_code == 201
    )
    with app.state.session_factory() as session:
        factories.version(session, plant_id="fd001", artifact_digest=DIGEST)
    return tokens


def test_matrix(client: TestClient, app: FastAPI, seeded: Tokens) -> None:
    failures: list[str] = []
    for (method, path), allowed in sorted(EXPECTED.items()):
        url = _url(path)
        anonymous = _call(client, method, url, {})
        if allowed == PUBLIC:
            if anonymous in (401, 403):
                failures.append(f"{method} {path}: public route answered {anonymous}")
            continue
        if anonymous != 401:
            failures.append(f"{method} {path}: no token answered {anonymous}, not 401")
        assert isinstance(allowed, set)
        for role in Role:
            status = _call(client, method, url, auth(seeded.for_role(role.value)))
            if role in allowed and status in (401, 403):
                failures.append(f"{method} {path}: {role.value} allowed but got {status}")
            if role not in allowed and status != 403:
                failures.append(f"{method} {path}: {role.value} denied but got {status}")
        if P in allowed and "{plant_id}" in path:
            status = _call(client, method, _url(path, plant_id="fd002"), auth(seeded.plant))
            if status != 403:
                failures.append(f"{method} {path}: plant token for another plant got {status}")
    assert not failures, "\n".join(failures)
