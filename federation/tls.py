"""TLS on every hop: client contexts that pin a CA, and the loopback test for plain HTTP.

The hub and the plant node serve HTTPS (``millwright hub serve`` and ``millwright node
serve``, both with ``--certfile --keyfile [--client-ca]``), the plant node and the hub
client verify the hub against a pinned CA file, and production settings refuse plain HTTP
unless both ends are on one machine (loopback).
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: Oldest protocol any Millwright endpoint speaks or accepts.
MINIMUM_TLS = ssl.TLSVersion.TLSv1_2


class InsecureTransport(ValueError):
    """A connection would carry credentials in clear text outside loopback."""


def is_loopback_host(host: str) -> bool:
    """Return True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Return True when the URL's host is loopback."""
    return is_loopback_host(urlsplit(url).hostname or "")


def client_context(
    ca_file: str | Path | None = None,
    *,
    client_cert: str | Path | None = None,
    client_key: str | Path | None = None,
) -> ssl.SSLContext:
    """Build a verifying client context: TLS 1.2+, hostname checked, CA pinned if given.

    Parameters
    ----------
    ca_file
        PEM file of the CA to trust instead of the system store (pinning); None: system CAs.
    client_cert, client_key
        Certificate and key to present for mutual TLS.

    Returns
    -------
    ssl.SSLContext
        The context (``verify_mode`` is ``CERT_REQUIRED``).
    """
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = MINIMUM_TLS
    if client_cert is not None:
        context.load_cert_chain(str(client_cert), str(client_key) if client_key else None)
    return context


def require_secure_url(url: str, *, what: str) -> None:
    """Raise :class:`InsecureTransport` for a plain ``http://`` URL to a non-loopback host."""
    if url.startswith("http://") and not is_loopback_url(url):
        raise InsecureTransport(
            f"{what} is plain http to a non-loopback host ({url}): bearer tokens would cross "
            "the network in clear text; use https:// (and pin the hub's CA)"
        )


def server_tls_options(
    *,
    bind: str,
    certfile: Path | None,
    keyfile: Path | None,
    client_ca: Path | None,
    production: bool,
    what: str,
) -> dict[str, Any]:
    """Check a server's TLS settings and return uvicorn's ``ssl_*`` keyword arguments.

    Parameters
    ----------
    bind
        The address the server listens on.
    certfile, keyfile
        PEM certificate and key; both or neither (neither: plain HTTP).
    client_ca
        CA of client certificates; when given every client must present one (mutual TLS).
    production
        Production settings: plain HTTP is refused on anything but loopback.
    what
        The server's name in error messages (``"hub"``, ``"plant node"``).

    Returns
    -------
    dict[str, Any]
        ``ssl_certfile``, ``ssl_keyfile``, ``ssl_ca_certs`` and ``ssl_cert_reqs`` for
        ``uvicorn.Config``; set ``config.ssl.minimum_version`` to :data:`MINIMUM_TLS` after
        ``config.load()``.

    Raises
    ------
    InsecureTransport
        Production, no certificate, and a non-loopback bind address.
    ValueError
        Only one of certfile and keyfile, or a client CA without them.
    """
    if (certfile is None) != (keyfile is None):
        raise ValueError("--certfile and --keyfile go together")
    if client_ca is not None and certfile is None:
        raise ValueError("--client-ca (mutual TLS) needs --certfile and --keyfile")
    if certfile is None and production and not is_loopback_host(bind):
        raise InsecureTransport(
            f"a production {what} does not serve plain HTTP on {bind}: bearer tokens would "
            "cross the network in clear text; pass --certfile/--keyfile or bind 127.0.0.1 "
            "behind a TLS-terminating proxy"
        )
    return {
        "ssl_certfile": str(certfile) if certfile else None,
        "ssl_keyfile": str(keyfile) if keyfile else None,
        "ssl_ca_certs": str(client_ca) if client_ca else None,
        "ssl_cert_reqs": ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
    }
