"""The node's authorization matrix: every route × every role, anonymous and revoked keys.

Routes come from the app's own route table (``iter_route_contexts``), so a new route that is
missing from ``EXPECTED`` fails until someone decides who may call it. The reliability
benchmark runs the same probe (``authz.node``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from plant_node.auth.schemas import NodeRole

PUBLIC = "public"
L, E, M = NodeRole.LINE, NodeRole.ENGINEER, NodeRole.MONITOR

EXPECTED: dict[tuple[str, str], set[NodeRole] | str] = {
    ("GET", "/v1/health"): PUBLIC,
    ("GET", "/v1/ready"): PUBLIC,
    ("POST", "/v1/predict"): {L, E},
    ("POST", "/v1/predict/batch"): {L, E},
    ("GET", "/v1/predictions/{prediction_id}"): {L, E},
    ("POST", "/v1/feedback"): {L, E},
    ("POST", "/v1/outcomes"): {L, E},
    ("GET", "/v1/alerts"): {L, E, M},
    ("GET", "/v1/connectors"): {L, E, M},
    ("GET", "/v1/monitoring/chunks"): {L, E, M},
    ("GET", "/v1/labeling/queue"): {L, E},
    ("POST", "/v1/labeling/{prediction_id}"): {L, E},
    ("POST", "/v1/line-signals"): {L, E},
    ("GET", "/v1/retraining/firings"): {L, E, M},
    ("GET", "/v1/rollout"): {L, E, M},
    ("POST", "/v1/rollout"): {E},
    ("DELETE", "/v1/rollout/{baseline}"): {E},
    ("POST", "/v1/models/reload"): {E},
    ("GET", "/metrics"): {L, E, M},
    ("GET", "/openapi.json"): {L, E, M},
    ("GET", "/docs"): {L, E, M},
}

PARAMS = {"prediction_id": "0" * 32, "baseline": "ai4i"}


def route_table(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, documented or not."""
    out: set[tuple[str, str]] = set()
    for ctx in iter_route_contexts(app.routes):
        for method in ctx.methods or ():
            if method != "HEAD":
                out.add((method, str(ctx.path)))
    return out


@dataclass
class MatrixResult:
    """Routes probed, calls made, and every call whose answer broke the matrix."""

    routes: int = 0
    calls: int = 0
    failures: list[str] = field(default_factory=list)


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    url = re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], path)
    kwargs: dict[str, object] = {"headers": headers}
    if method in {"POST", "PUT", "PATCH"}:
        kwargs["json"] = {}  # invalid on purpose: an allowed role gets 422, never a write
    response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    return int(response.status_code)


def run_matrix(
    client: TestClient, keys: dict[NodeRole, str], revoked: str, unknown: str = "mwn_" + "x" * 43
) -> MatrixResult:
    """Call every route with no key, a revoked and an unknown key, and each role's key."""
    result = MatrixResult(routes=len(EXPECTED))
    for (method, path), allowed in sorted(EXPECTED.items()):
        anonymous = _call(client, method, path, {})
        result.calls += 1
        if allowed == PUBLIC:
            if anonymous in (401, 403):
                result.failures.append(f"{method} {path}: public route answered {anonymous}")
            continue
        if anonymous != 401:
            result.failures.append(f"{method} {path}: no key answered {anonymous}, not 401")
        for label, bad in (("revoked", revoked), ("unknown", unknown), ("basic", None)):
            headers = {"Authorization": f"Bearer {bad}"} if bad else {
                "Authorization": "Basic dXNlcjpwYXNz"}  # fmt: skip
            status = _call(client, method, path, headers)
            result.calls += 1
            if status != 401:
                result.failures.append(f"{method} {path}: {label} key answered {status}")
        assert isinstance(allowed, set)
        for role in NodeRole:
            status = _call(client, method, path, {"Authorization": f"Bearer {keys[role]}"})
            result.calls += 1
            if role in allowed and status in (401, 403):
                result.failures.append(f"{method} {path}: {role.value} allowed but got {status}")
            if role not in allowed and status != 403:
                result.failures.append(f"{method} {path}: {role.value} denied but got {status}")
    return result
