"""The uvicorn configuration of ``millwright hub serve``: one worker, HTTPS when configured.

TLS 1.2 is the minimum; with a client CA every client must present a certificate it signed
(mutual TLS for plant nodes). A production hub refuses to serve plain HTTP on anything but
loopback (a TLS-terminating proxy on the same machine connects over loopback).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from federation.tls import MINIMUM_TLS, server_tls_options
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
    tls = server_tls_options(
        bind=bind,
        certfile=certfile or settings.tls_certfile,
        keyfile=keyfile or settings.tls_keyfile,
        client_ca=client_ca or settings.tls_client_ca,
        production=settings.environment == "production",
        what="hub",
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
        **tls,
    )
    config.load()
    if config.ssl is not None:
        config.ssl.minimum_version = MINIMUM_TLS
    return config
