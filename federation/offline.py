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
    # NNCF replaces its Google Analytics sender with a stub when this is set
    # (nncf/telemetry/wrapper.py).
    "NNCF_CI": "1",
}


def disable_telemetry() -> dict[str, str]:
    """Set the environment switches that turn library telemetry off.

    Returns
    -------
    dict[str, str]
        The variables that were set, for logging.
    """
    os.environ.update(_OFFLINE_ENV)
    _opt_out_of_openvino_telemetry()
    return dict(_OFFLINE_ENV)


def _opt_out_of_openvino_telemetry() -> None:
    """Record the OpenVINO telemetry opt-out in its consent file (``~/intel/openvino_telemetry``).

    OpenVINO's model converter treats a *missing* consent file as consent when it runs without
    its opt-in dialog, so without this ``openvino.convert_model`` would try to send usage data.
    Writing "0" through the package's own checker is the vendor's documented opt-out and sends
    nothing (``Telemetry.opt_out`` would send an opt-out event, so it is not used).
    """
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # the package is absent: nothing can be sent
        return
    checker = OptInChecker()
    try:
        if checker.check(enable_opt_in_dialog=False) != ConsentCheckResult.DECLINED:
            checker.update_result(ConsentCheckResult.DECLINED)
    except OSError:  # read-only home: the converter then cannot persist a client id either
        pass
