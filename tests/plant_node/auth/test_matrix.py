"""Authorization matrix of the node: every route of the app × every role, plus bad keys."""

from __future__ import annotations

from fastapi.testclient import TestClient

from plant_node.auth import service as auth_service
from plant_node.auth.schemas import NodeRole
from plant_node.config import NodeSettings
from plant_node.main import create_app
from tests.plant_node.auth.matrix import EXPECTED, route_table, run_matrix
from tests.plant_node.keys import KEYS


def test_every_route_is_in_the_matrix(node_settings: NodeSettings) -> None:
    routes = route_table(create_app(node_settings))
    missing = routes - set(EXPECTED)
    stale = set(EXPECTED) - routes
    assert not missing, f"routes without an authorization decision: {sorted(missing)}"
    assert not stale, f"matrix rows for routes that no longer exist: {sorted(stale)}"


def test_matrix(node_settings: NodeSettings) -> None:
    with TestClient(create_app(node_settings)) as client:
        with client.app.state.node.session_factory() as session:  # type: ignore[attr-defined]
            revoked = auth_service.create_key(session=session, role=NodeRole.ENGINEER, name="x")
            auth_service.revoke_key(session=session, key_id=revoked.id)
        result = run_matrix(client, KEYS, revoked.key)
    assert result.routes == len(route_table(client.app))  # type: ignore[arg-type]
    assert not result.failures, "\n".join(result.failures)
