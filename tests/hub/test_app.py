"""The app starts on a migrated database and serves the API and readiness."""

from fastapi.testclient import TestClient

from tests.hub.fixtures import Tokens, auth


def test_app_serves_api_and_readiness(client: TestClient, tokens: Tokens) -> None:
    r = client.get("/api/v1/plants", headers=auth(tokens.admin))
    assert r.status_code == 200, r.text
    assert [p["id"] for p in r.json()["items"]] == ["fd001", "fd002"]
    assert client.get("/readyz").status_code == 200, client.get("/readyz").text
