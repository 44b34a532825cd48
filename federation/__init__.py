"""What crosses the plant/hub boundary: wire schemas, errors, the hub client, Flower apps.

Importing this package is cheap (no torch, no flwr) and turns library telemetry off,
because both deployables import it before anything else of theirs.
"""

from federation.errors import ErrorCode, MillwrightError
from federation.offline import disable_telemetry

disable_telemetry()

__all__ = ["ErrorCode", "MillwrightError", "disable_telemetry"]
