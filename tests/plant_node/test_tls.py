"""TLS on the node's own listener: HTTPS with a pinned CA, optional mTLS, no key in clear."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from federation.flower.certs import generate_tls, issue_certificate
from federation.tls import MINIMUM_TLS, InsecureTransport, client_context
from plant_node.cli import app as cli_app
from plant_node.config import NodeSettings
from plant_node.main import create_app
from plant_node.server import server_config
from tests.hub.security.test_tls import Pki, RecordingRelay
from tests.plant_node.keys import LINE_KEY, auth

Serve = Callable[..., tuple[int, uvicorn.Config]]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("node-pki")
    tls = generate_tls(root / "ca")
    server = issue_certificate(root / "ca", root / "node", "node")
    client = issue_certificate(root / "ca", root / "line", "line-client", client=True)
    return Pki(tls.ca_cert, server.cert, server.key, client.cert, client.key)


@pytest.fixture
def serve(node_settings: NodeSettings) -> Iterator[Serve]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(**tls: Path) -> tuple[int, uvicorn.Config]:
        sock = socket.create_server(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        config = server_config(node_settings, create_app(node_settings), port=port, **tls)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append((server, thread))
        while not server.started:
            thread.join(0.02)
        return port, config

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(5)


def test_a_line_key_never_crosses_the_loopback_in_clear(serve: Serve, pki: Pki) -> None:
    # Prepare: an HTTPS node and a plain-HTTP node (the control), each behind a recorder.
    tls_port, tls_config = serve(certfile=pki.cert, keyfile=pki.key)
    plain_port, _ = serve()
    tls_relay, plain_relay = RecordingRelay(tls_port), RecordingRelay(plain_port)

    # Execute: the same authenticated read through each (the CA is pinned for HTTPS).
    with httpx.Client(verify=client_context(pki.ca)) as client:
        secure = client.get(f"https://127.0.0.1:{tls_relay.port}/v1/rollout", headers=auth("line"))
        with pytest.raises(httpx.HTTPError):  # plain HTTP to the HTTPS port is not answered
            client.get(f"http://127.0.0.1:{tls_port}/v1/rollout", headers=auth("line"))
    clear = httpx.get(f"http://127.0.0.1:{plain_relay.port}/v1/rollout", headers=auth("line"))
    tls_relay.close()
    plain_relay.close()

    # Assert: both answered; over TLS the key's bytes never appear, in the control they do.
    assert secure.status_code == clear.status_code == 200, (secure.text, clear.text)
    secret = LINE_KEY.encode()
    assert tls_relay.sent[:1] == b"\x16"  # a TLS handshake record
    assert secret not in tls_relay.sent and secret[8:24] not in tls_relay.sent
    assert b"Authorization" not in tls_relay.sent and b"rollout" not in tls_relay.sent
    assert secret in plain_relay.sent
    assert tls_config.ssl is not None and tls_config.ssl.minimum_version == MINIMUM_TLS


def test_mutual_tls_requires_a_client_certificate_from_the_ca(
    serve: Serve, pki: Pki, tmp_path: Path
) -> None:
    port, _ = serve(certfile=pki.cert, keyfile=pki.key, client_ca=pki.ca)
    url = f"https://127.0.0.1:{port}/v1/health"
    other_ca = generate_tls(tmp_path / "other").ca_cert

    with pytest.raises(httpx.HTTPError):  # no client certificate: the handshake is refused
        httpx.get(url, verify=client_context(pki.ca))
    with pytest.raises(httpx.HTTPError):  # the node's certificate is not from the pinned CA
        httpx.get(url, verify=client_context(other_ca, client_cert=pki.client_cert,
                                             client_key=pki.client_key))  # fmt: skip
    ok = httpx.get(url, verify=client_context(pki.ca, client_cert=pki.client_cert,
                                              client_key=pki.client_key))  # fmt: skip
    assert ok.status_code == 200 and ok.json()["status"] == "ok"


def test_production_node_refuses_plain_http_off_loopback(tmp_path: Path, pki: Pki) -> None:
    prod = NodeSettings(environment="production", hub_url="https://hub.example:8100",
                        hub_token="a-real-plant-token-123", data_dir=tmp_path)  # fmt: skip
    app = create_app(prod)
    with pytest.raises(InsecureTransport, match="plant node"):
        server_config(prod, app, host="0.0.0.0")
    assert server_config(prod, app, host="127.0.0.1").ssl is None  # behind a local proxy
    assert server_config(prod, app, host="0.0.0.0", certfile=pki.cert, keyfile=pki.key).ssl
    with pytest.raises(ValueError, match="go together"):
        server_config(prod, app, certfile=pki.cert)
    with pytest.raises(ValueError, match="mutual TLS"):
        server_config(prod, app, client_ca=pki.ca)

    # the CLI refuses before it migrates anything (exit 2, nothing written)
    result = CliRunner().invoke(
        cli_app,
        ["serve", "--data-dir", str(tmp_path / "n"), "--certfile", str(pki.cert)],
    )
    assert result.exit_code == 2, result.output
    assert "go together" in result.output
    assert not (tmp_path / "n" / "node.db").exists()
