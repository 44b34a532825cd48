"""Raw line records of a plant's test stream, as ``/v1/predict`` requests (demo and replay)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from baselines.datasets import load_ai4i, load_cmapss
from baselines.features import ai4i


def replay_requests(baseline: str, plant: str | None, limit: int) -> Iterator[list[dict[str, Any]]]:
    """Yield request record lists: one AI4I record, or one C-MAPSS engine's last 30 cycles.

    Parameters
    ----------
    baseline
        ``ai4i`` or ``cmapss``.
    plant
        AI4I product Type to keep, or the C-MAPSS subset (default FD001).
    limit
        Most requests to yield.

    Yields
    ------
    list[dict[str, Any]]
        The ``records`` of one request.
    """
    if baseline == "ai4i":
        frame = load_ai4i()
        if plant is not None:
            frame = frame[frame["type"] == plant]
        cols = ["type", *ai4i.RAW_NUMERIC]
        for i, row in enumerate(frame[cols].itertuples(index=False)):
            if i >= limit:
                return
            yield [
                {c: (str(v) if c == "type" else float(v)) for c, v in zip(cols, row, strict=True)}
            ]
        return
    if baseline != "cmapss":
        raise ValueError(f"unknown baseline {baseline!r}")
    frame = load_cmapss(plant or "FD001", "test")
    for i, (_, unit) in enumerate(frame.groupby("unit", sort=True)):
        if i >= limit:
            return
        yield [
            {k: (int(v) if k in ("unit", "cycle") else float(v)) for k, v in rec.items()}
            for rec in unit.tail(30).to_dict(orient="records")
        ]
