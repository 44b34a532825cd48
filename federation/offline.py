"""Process-wide switches that keep third-party libraries from phoning home.

Plants are air-gapped: Flower and nannyml send usage telemetry by default, so every
Millwright entry point calls :func:`disable_telemetry` before those libraries load.
"""

from __future__ import annotations

import os

# Forced, not defaulted: a plant must not phone home even if a shell profile says otherwise.
_OFFLINE_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "NML_DISABLE_USAGE_LOGGING": "1",
    # Hugging Face style hubs are unreachable from a plant; fail fast instead of retrying.
    "HF_HUB_OFFLINE": "1",
}


def disable_telemetry() -> dict[str, str]:
    """Set the environment switches that turn library telemetry off.

    Returns
    -------
    dict[str, str]
        The variables that were set, for logging.
    """
    os.environ.update(_OFFLINE_ENV)
    return dict(_OFFLINE_ENV)
