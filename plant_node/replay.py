"""Raw line records of a plant's test stream, as ``/v1/predict`` requests (demo and replay)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from baselines.datasets import load_ai4i, load_cmapss, load_cmapss_rul
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
        for record, _label in ai4i_stream(plant, limit):
            yield [record]
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


def ai4i_stream(plant: str | None, limit: int) -> Iterator[tuple[dict[str, Any], int]]:
    """Yield AI4I raw records of one product Type in production order, with the QA verdict.

    The verdict (``machine_failure``) is what the quality lab reports a shift later; it is
    never part of the record sent to ``/v1/predict``.
    """
    frame = load_ai4i()
    if plant is not None:
        frame = frame[frame["type"] == plant]
    cols = ["type", *ai4i.RAW_NUMERIC]
    rows = frame[[*cols, "machine_failure"]].head(limit).itertuples(index=False)
    for *values, label in rows:
        pairs = zip(cols, values, strict=True)
        yield {c: (str(v) if c == "type" else float(v)) for c, v in pairs}, int(label)


def fleet_requests(
    subset: str = "FD001",
    units: Sequence[int] | None = None,
    *,
    slots: int = 10,
    every: int = 5,
    window: int = 30,
    offset: Mapping[str, float] | None = None,
    seed: int = 7,
) -> Iterator[list[dict[str, Any]]]:
    """Yield C-MAPSS test units as a running fleet: one request per time step, every cycle-step.

    Units are dealt to ``slots`` engine positions that run them back to back; at each step
    every busy position sends the window of its engine's last ``window`` cycles ending at
    the current cycle, so the log holds one prediction per engine per ``every`` cycles and
    every chunk mixes engines at every stage of life (as on a real fleet).

    Parameters
    ----------
    subset
        C-MAPSS subset of the test split.
    units
        Unit ids to replay (all by default).
    slots
        Engines running at the same time (the batch size of a request).
    every
        Cycles between two predictions of one engine.
    window
        Cycles of history sent with each prediction.
    offset
        Sensor recalibration to inject, e.g. ``{"s11": 0.5}`` added to every reading.
    seed
        Order in which units are dealt to positions.

    Yields
    ------
    list[dict[str, Any]]
        The ``records`` of one request (several engines, told apart by ``unit``).
    """
    import numpy as np

    frame = load_cmapss(subset, "test")
    if units is not None:
        frame = frame[frame["unit"].isin(list(units))]
    for col, delta in (offset or {}).items():
        frame[col] = frame[col] + delta
    by_unit = {
        int(u): [
            {k: (int(v) if k in ("unit", "cycle") else float(v)) for k, v in rec.items()}
            for rec in g.sort_values("cycle").to_dict(orient="records")
        ]
        for u, g in frame.groupby("unit")
    }
    rng = np.random.default_rng(seed)
    order = [int(u) for u in rng.permutation(sorted(by_unit))]
    queues: list[list[int]] = [order[i::slots] for i in range(slots)]
    # per position: (unit, index of the next cycle to report); the first engine of each
    # position joins at a random point of its life, so the fleet is in steady state at once
    current: list[tuple[int, int] | None] = []
    for q in queues:
        if not q:
            current.append(None)
            continue
        unit = q.pop(0)
        current.append((unit, int(rng.integers(every - 1, len(by_unit[unit])))))
    while any(c is not None for c in current):
        records: list[dict[str, Any]] = []
        for j, cur in enumerate(current):
            if cur is None:
                continue
            unit, i = cur
            cycles = by_unit[unit]
            records.extend(cycles[max(0, i - window + 1) : i + 1])
            nxt = i + every
            if nxt < len(cycles):
                current[j] = (unit, nxt)
            else:
                current[j] = (queues[j].pop(0), every - 1) if queues[j] else None
        if records:
            yield records


def failure_records(
    subset: str = "FD001", units: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Return the maintenance records of test units: failure cycle = last cycle + true RUL.

    C-MAPSS test trajectories stop before failure; ``RUL_FDxxx.txt`` says how many cycles
    each unit had left, which is what a maintenance log would report afterwards.
    """
    frame = load_cmapss(subset, "test")
    last = frame.groupby("unit")["cycle"].max()
    rul = load_cmapss_rul(subset)
    wanted = set(units) if units is not None else None
    return [
        {"unit": int(u), "failed_at_cycle": int(c) + int(rul[int(u) - 1])}
        for u, c in last.items()
        if wanted is None or int(u) in wanted
    ]
