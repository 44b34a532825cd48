"""TLS on every hop (issue 18, defect 3): the hub serves HTTPS, clients pin the CA, and a
bearer token never crosses the loopback in clear text (a recording relay proves it)."""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from pydantic import ValidationError

from federation.errors import MillwrightError
from federation.flower.certs import generate_tls, issue_certificate
from federation.hub_client import HubClient
from federation.schemas.auth import Role, TokenCreate
from federation.tls import MINIMUM_TLS, InsecureTransport
from hub.auth import service as auth_service
from hub.config import HubSettings
from hub.db import make_engine, make_session_factory
from hub.main import create_app
from hub.server import server_config
from plant_node.config import NodeSettings


class RecordingRelay:
    """A TCP relay in front of the hub port that records every byte the client sends."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.sent = bytearray()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    self.sent.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._sock.close()


@dataclass
class Hub:
    port: int
    token: str
    config: uvicorn.Config


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    tls = generate_tls(root / "ca")
    server = issue_certificate(root / "ca", root / "hub", "hub")
    client = issue_certificate(root / "ca", root / "node", "node-fd001", client=True)
    return Pki(tls.ca_cert, server.cert, server.key, client.cert, client.key)


@pytest.fixture
def hub_db(tmp_path: Path, sqlite_template: Path) -> tuple[HubSettings, str]:
    db = tmp_path / "hub.db"
    shutil.copyfile(sqlite_template, db)
    settings = HubSettings(database_url=f"sqlite:///{db}", artifact_root=tmp_path / "a")
    engine = make_engine(settings)
    with make_session_factory(engine)() as session:
        token = auth_service.create_token(
            session=session, token_in=TokenCreate(role=Role.ADMIN), actor="t"
        ).token
    engine.dispose()
    return settings, token


@pytest.fixture
def serve(hub_db: tuple[HubSettings, str]) -> Iterator[object]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(**tls: Path) -> Hub:
        settings, token = hub_db
        sock = socket.create_server(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        config = server_config(settings, port=port, app=create_app(settings), **tls)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append((server, thread))
        while not server.started:
            thread.join(0.02)
        return Hub(port, token, config)

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(5)


def test_a_bearer_token_never_crosses_the_loopback_in_clear(serve: object, pki: Pki) -> None:
    # Prepare: an HTTPS hub and a plain-HTTP hub (the control), each behind a recorder.
    tls_hub = serve(certfile=pki.cert, keyfile=pki.key)  # type: ignore[operator]
    plain_hub = serve()  # type: ignore[operator]
    tls_relay, plain_relay = RecordingRelay(tls_hub.port), RecordingRelay(plain_hub.port)

    # Execute: the same authenticated call through each.
    url = f"https://127.0.0.1:{tls_relay.port}"
    with HubClient(url, token=tls_hub.token, ca_file=pki.ca, retries=0) as hub:
        assert hub.whoami().role == Role.ADMIN
    with HubClient(f"http://127.0.0.1:{plain_relay.port}", token=plain_hub.token) as hub:
        assert hub.whoami().role == Role.ADMIN
    tls_relay.close()
    plain_relay.close()

    # Assert: over TLS the token's bytes never appear; in the control run they do.
    secret = tls_hub.token.encode()
    assert tls_relay.sent[:1] == b"\x16"  # a TLS handshake record
    assert secret not in tls_relay.sent and secret[8:24] not in tls_relay.sent
    assert b"Authorization" not in tls_relay.sent and b"whoami" not in tls_relay.sent
    assert secret in plain_relay.sent
    assert tls_hub.config.ssl is not None
    assert tls_hub.config.ssl.minimum_version == MINIMUM_TLS


def test_clients_pin_the_ca_and_mutual_tls_requires_a_client_certificate(
    serve: object, pki: Pki, tmp_path: Path
) -> None:
    hub = serve(certfile=pki.cert, keyfile=pki.key, client_ca=pki.ca)  # type: ignore[operator]
    url = f"https://127.0.0.1:{hub.port}"
    other_ca = generate_tls(tmp_path / "other").ca_cert

    with HubClient(url, token=hub.token, ca_file=pki.ca, retries=0) as c:
        with pytest.raises(MillwrightError):  # no client certificate: handshake refused
            c.whoami()
    with HubClient(
        url, token=hub.token, ca_file=other_ca, client_cert=(pki.client_cert, pki.client_key),
        retries=0,
    ) as c:  # fmt: skip
        with pytest.raises(MillwrightError):  # the hub's certificate is not from the pinned CA
            c.whoami()
    with HubClient(
        url, token=hub.token, ca_file=pki.ca, client_cert=(pki.client_cert, pki.client_key),
        retries=0,
    ) as c:  # fmt: skip
        assert c.whoami().role == Role.ADMIN


def test_production_refuses_plain_http_off_loopback_and_an_insecure_control_api(
    tmp_path: Path,
) -> None:
    token = {"environment": "production", "hub_token": "a-real-plant-token-123"}
    with pytest.raises(ValidationError, match="plain http"):
        NodeSettings(hub_url="http://10.0.0.5:8100", data_dir=tmp_path, **token)
    NodeSettings(hub_url="https://hub.plant.example:8100", data_dir=tmp_path, **token)
    NodeSettings(hub_url="http://127.0.0.1:8100", data_dir=tmp_path, **token)  # same machine

    prod = HubSettings(environment="production", database_url="sqlite:///x.db")
    with pytest.raises(InsecureTransport):
        server_config(prod, host="0.0.0.0")
    with pytest.raises(ValidationError, match="insecure Control API"):
        HubSettings(environment="production", campaign_superlink="10.0.0.7:9093")

    from federation.flower.environment import apply_to_current_process

    apply_to_current_process(flwr_home=tmp_path / "flwr")
    from federation.flower.control import ControlClient

    with pytest.raises(InsecureTransport):
        ControlClient("10.0.0.7:9093", None, allow_insecure=True)  # not loopback
    with pytest.raises(InsecureTransport):
        ControlClient("127.0.0.1:9093", None)  # loopback, but no explicit opt-in


def test_the_hub_certificate_comes_from_the_flower_ca(pki: Pki) -> None:
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_verify_locations(cafile=str(pki.ca))
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pki.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
