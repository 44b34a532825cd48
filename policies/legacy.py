"""Gates as Millwright recipes wrote them before ``policies``: upgraded on read, never written."""

from __future__ import annotations

import re
from typing import Any

from policies.evidence import KNOWN_METRICS, is_known_metric

#: Where a recipe's bare metric is measured: the version's own test split.
LEGACY_PREFIX = "validation"


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "_", text.casefold()).strip("._-")
    return slug or "gate"


def upgrade_legacy_gate(raw: Any, *, prefix: str = LEGACY_PREFIX) -> Any:
    """Return a legacy gate mapping in :class:`~policies.Gate` form; anything else unchanged.

    Two legacy shapes exist: the baselines recipe's ``{metric, op, value, plant}`` and the
    hub recipe's ``{metric, op, threshold}`` with the plant folded into the metric
    (``"rmse.fd001"``). Both become ``{name, metric: "<prefix>.<metric>", op, threshold,
    scope}`` with the plant as a plant scope and the name ``<metric>`` or
    ``<metric>_<plant>``.

    Parameters
    ----------
    raw
        One gate as stored.
    prefix
        The evidence family a bare metric belongs to.

    Returns
    -------
    Any
        The upgraded mapping, or ``raw`` itself when it is not a legacy gate (it already
        has a ``name``, or is no mapping): validation then reports what is wrong with it.
    """
    if not isinstance(raw, dict) or "name" in raw or not isinstance(raw.get("metric"), str):
        return raw
    out = {k: v for k, v in raw.items() if k not in ("value", "plant")}
    metric: str = raw["metric"]
    plant = raw.get("plant")
    head, _, tail = metric.partition(".")
    if plant is None and tail and head in KNOWN_METRICS and not is_known_metric(metric):
        metric, plant = head, tail
    if "threshold" not in out and "value" in raw:
        out["threshold"] = raw["value"]
    out["metric"] = metric if is_known_metric(metric) else f"{prefix}.{metric}"
    out["name"] = _slug(metric if plant is None else f"{metric}_{plant}")
    if plant is not None:
        out["scope"] = {"level": "plant", "value": str(plant)}
    return out


def upgrade_legacy_gates(items: Any, *, prefix: str = LEGACY_PREFIX) -> Any:
    """Upgrade every legacy gate of a list (:func:`upgrade_legacy_gate`), keeping names unique.

    Parameters
    ----------
    items
        The gates as stored; anything but a list is returned unchanged.
    prefix
        The evidence family a bare metric belongs to.

    Returns
    -------
    Any
        The list with legacy gates upgraded; a repeated derived name gets ``_2``, ``_3``...
    """
    if not isinstance(items, list):
        return items
    upgraded = [upgrade_legacy_gate(item, prefix=prefix) for item in items]
    taken = {g["name"] for g, raw in zip(upgraded, items, strict=True) if _named(raw)}
    for gate, raw in zip(upgraded, items, strict=True):
        if _named(raw) or not isinstance(gate, dict) or "name" not in gate:
            continue
        name, n = gate["name"], 2
        while name in taken:
            name, n = f"{gate['name']}_{n}", n + 1
        gate["name"] = name
        taken.add(name)
    return upgraded


def _named(raw: Any) -> bool:
    return isinstance(raw, dict) and isinstance(raw.get("name"), str)

