"""Rule-based C-MAPSS RUL fallback: a linear health index over the feature windows (numpy only).

The rule, fitted once on training windows and stored as JSON:

1. Each sensor's direction of degradation is the sign of its correlation with the (capped)
   RUL target: sensors that rise as the engine wears get ``-1``, sensors that fall get ``+1``.
2. Health index ``HI`` = mean over sensors of ``sign × z`` (the condition-normalized features
   produced by ``baselines.features.cmapss``), averaged over the last ``smooth`` cycles of the
   window; healthy engines have high HI.
3. ``RUL = clip(intercept + slope × HI, 0, rul_cap)``, with intercept and slope from a
   least-squares fit on the training windows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from baselines.typing import FloatArray, NDArray


@dataclass(frozen=True)
class HealthIndexRule:
    """Fitted parameters of the health-index rule."""

    signs: list[float]
    intercept: float
    slope: float
    smooth: int
    rul_cap: float
    kind: str = "cmapss-health-index"

    def health_index(self, x: FloatArray) -> FloatArray:
        """Health index of windows ``(n, window, features)``, float64 ``(n,)``."""
        x = np.asarray(x, dtype=np.float64)
        tail = x[:, -self.smooth :, :].mean(axis=1)
        return np.asarray(tail @ np.asarray(self.signs) / len(self.signs), dtype=np.float64)

    def predict(self, x: FloatArray) -> FloatArray:
        """RUL in cycles for windows ``(n, window, features)``, float32 ``(n,)``."""
        rul = self.intercept + self.slope * self.health_index(x)
        return np.asarray(np.clip(rul, 0.0, self.rul_cap), dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    def to_json(self) -> str:
        """Serialize to JSON."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealthIndexRule:
        """Rebuild from ``to_dict`` output."""
        return cls(
            signs=[float(v) for v in data["signs"]],
            intercept=float(data["intercept"]),
            slope=float(data["slope"]),
            smooth=int(data["smooth"]),
            rul_cap=float(data["rul_cap"]),
        )


def fit_health_index(
    x: FloatArray, y: NDArray, *, smooth: int = 10, rul_cap: float = 125.0
) -> HealthIndexRule:
    """Fit the rule on training windows ``x`` and their RUL targets ``y``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    last = x[:, -1, :]
    centred = last - last.mean(axis=0)
    corr = centred.T @ (y - y.mean())
    signs = np.where(corr >= 0, 1.0, -1.0)
    probe = HealthIndexRule(signs.tolist(), 0.0, 1.0, smooth, rul_cap)
    hi = probe.health_index(x)
    slope, intercept = np.polyfit(hi, y, 1)
    return HealthIndexRule(signs.tolist(), float(intercept), float(slope), smooth, rul_cap)


__all__ = ["HealthIndexRule", "fit_health_index"]
