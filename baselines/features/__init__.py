"""Feature pipelines (numpy only), shared by training, the Flower client and plant serving.

``baselines.features.cmapss`` and ``baselines.features.ai4i`` each expose ``fit(frame) -> state``,
``transform(frame, state)`` and ``transform_rows(rows, state)``; states round-trip through JSON.
``state_from_dict`` rebuilds either kind from its JSON form (what an export's metadata holds).
"""

from __future__ import annotations

from typing import Any

from baselines.features import ai4i, cmapss
from baselines.features.ai4i import Ai4iFeatureState
from baselines.features.cmapss import CmapssFeatureConfig, CmapssFeatureState


def state_from_dict(data: dict[str, Any]) -> CmapssFeatureState | Ai4iFeatureState:
    """Rebuild a feature state of either kind from its ``to_dict`` form.

    Raises
    ------
    ValueError
        If ``data["kind"]`` names no known pipeline.
    """
    kind = data.get("kind")
    if kind == cmapss.STATE_KIND:
        return CmapssFeatureState.from_dict(data)
    if kind == ai4i.STATE_KIND:
        return Ai4iFeatureState.from_dict(data)
    raise ValueError(f"unknown feature state kind {kind!r}")


__all__ = [
    "Ai4iFeatureState",
    "CmapssFeatureConfig",
    "CmapssFeatureState",
    "ai4i",
    "cmapss",
    "state_from_dict",
]
