"""Loaded by every Python process started with this directory on PYTHONPATH (air-gap test).

Name resolution of anything but loopback is refused and logged as
``<pid> <program> <host>``, so no packet leaves the machine even if a guard fails.
"""

import os
import socket
import sys

_LOG = os.environ.get("MILLWRIGHT_NETGUARD_LOG", "")
_ALLOWED = {"127.0.0.1", "::1", "localhost", "0.0.0.0", "::", "", None}
_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    name = host.decode() if isinstance(host, bytes) else host
    if name not in _ALLOWED:
        if _LOG:
            with open(_LOG, "a", encoding="utf-8") as log:
                log.write(f"{os.getpid()} {os.path.basename(sys.argv[0])} {name}\n")
        raise socket.gaierror(socket.EAI_NONAME, f"{name}: blocked by the air-gap test")
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _guarded_getaddrinfo
