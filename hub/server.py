"""The uvicorn configuration of ``millwright hub serve``: one worker, HTTPS when configured.

TLS 1.2 is the minimum; with a client CA every client must present a certificate it signed
(mutual TLS for plant nodes). A production hub refuses to serve plain HTTP on anything but
loopback (a TLS-terminating proxy on the same machine connects over loopback).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from federation.tls import MINIMUM_TLS, InsecureTransport, is_loopback_host
from hub.config import HubSettings


def server_config(
    settings: HubSettings,
    *,
    host: str | None = None,
    port: int | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    client_ca: Path | None = None,
    app: str | Callable[..., Any] = "hub.main:app_from_env",
) -> uvicorn.Config:
    """Return the loaded uvicorn config (its SSL context already set to TLS 1.2+).

    Parameters
    ----------
    settings
        Defaults for everything not given.
    host, port, certfile, keyfile, client_ca
        Overrides of ``settings.host``, ``port``, ``tls_certfile``, ``tls_keyfile`` and
        ``tls_client_ca``.
    app
        Import string of the app factory, or an application (tests).

    Returns
    -------
    uvicorn.Config
        Loaded, so ``config.ssl`` is the server context (None for plain HTTP).

    Raises
    ------
    InsecureTransport
        Production settings, no certificate, and a non-loopback bind address.
    ValueError
        Only one of certfile and keyfile, or a client CA without them.
    """
    bind = host or settings.host
    certfile = certfile or settings.tls_certfile
    keyfile = keyfile or settings.tls_keyfile
    client_ca = client_ca or settings.tls_client_ca
    if (certfile is None) != (keyfile is None):
        raise ValueError("--certfile and --keyfile go together")
    if client_ca is not None and certfile is None:
        raise ValueError("--client-ca (mutual TLS) needs --certfile and --keyfile")
    if certfile is None and settings.environment == "production" and not is_loopback_host(bind):
        raise InsecureTransport(
            f"a production hub does not serve plain HTTP on {bind}: bearer tokens would cross "
            "the network in clear text; pass --certfile/--keyfile or bind 127.0.0.1 behind "
            "a TLS-terminating proxy"
        )
    config = uvicorn.Config(
        app,
        factory=isinstance(app, str),
        host=bind,
        port=port or settings.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_keep_alive=30,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        ssl_ca_certs=str(client_ca) if client_ca else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
    )
    config.load()
    if config.ssl is not None:
        config.ssl.minimum_version = MINIMUM_TLS
    return config
