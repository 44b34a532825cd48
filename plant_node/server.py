"""The uvicorn configuration of ``millwright node serve``: one worker, HTTPS when configured.

Line clients and plant engineers send their keys to the node, so it speaks TLS 1.2+ when
given a certificate (the demo's comes from the same CA as the hub's and Flower's), optionally
requiring client certificates. A production node refuses plain HTTP on anything but loopback.
"""

from __future__ import annotations

from pathlib import Path

import uvicorn
from fastapi import FastAPI

from federation.tls import MINIMUM_TLS, server_tls_options
from plant_node.config import NodeSettings


def server_config(
    settings: NodeSettings,
    app: FastAPI,
    *,
    host: str | None = None,
    port: int | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    client_ca: Path | None = None,
) -> uvicorn.Config:
    """Return the loaded uvicorn config of the node (its SSL context set to TLS 1.2+).

    Parameters
    ----------
    settings
        Defaults for everything not given.
    app
        The node's application (``plant_node.main.create_app``).
    host, port, certfile, keyfile, client_ca
        Overrides of ``settings.host``, ``port``, ``tls_certfile``, ``tls_keyfile`` and
        ``tls_client_ca``.

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
        what="plant node",
    )
    config = uvicorn.Config(
        app,
        host=bind,
        port=settings.port if port is None else port,
        workers=1,
        log_level="warning",
        access_log=False,
        **tls,
    )
    config.load()
    if config.ssl is not None:
        config.ssl.minimum_version = MINIMUM_TLS
    return config
