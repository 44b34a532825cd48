"""Monitoring on real shifts: replay C-MAPSS and AI4I streams through the plant-node monitor.

Writes ``benchmarks/results/monitoring.json``. Scenarios (chunks of 500 logged predictions):

- ``stable``: FD001 test units the reference never saw, through the FD001 model;
- ``new_fault_mode``: the stable stream, then FD003 test units (HPC + fan faults);
- ``sensor_offset``: the stable stream with sensor s11 recalibrated (+2 reference std)
  from a known time;
- ``stuck_sensor``: the stable stream with sensor s7 frozen at its last reading per unit;
- ``missing_data``: the stable stream losing 30 % of its rows and 20 % of s4 readings;
- ``ai4i_heldout``: held-out AI4I rows through the AI4I classifier;
- ``ai4i_covariate_shift``: the held-out rows, then rows resampled towards high air
  temperature and tool wear (covariate shift: the labels are the real ones).

Models are the project's baselines, trained and exported by the ``baselines`` package as the
demo does (``millwright baselines train cmapss --plant FD001 --epochs 3`` / ``train ai4i
--epochs 20``, then ``export``; cached by training fingerprint under ``benchmarks/.cache``):
the FD001 RUL CNN and the AI4I MLP ensemble. Predictions come from the OpenVINO export loaded
by the node's own ``ModelRuntime`` (INT8, the node's preferred precision) and fed through the
node's serving pipelines (``plant_node.serving.pipelines``, i.e. ``baselines.features``). C-MAPSS
logs one prediction per (unit, cycle) from the unit's cycles seen so far (the pipeline
front-pads histories shorter than its 30-cycle window); AI4I logs one per record.

Streams: C-MAPSS test trajectories are replayed as a fleet of 20 engine positions that run
units back to back (a unit every 10 minutes per position), each position starting at a
random point of its first unit, so every chunk mixes units at every stage of life. The
reference period is half of the FD001 test units, replayed the same way; the stable stream
is the other half.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from federation.offline import disable_telemetry

disable_telemetry()

from plant_node.monitoring.alerts import (  # noqa: E402
    AlertKind,
    AlertRule,
    collect_alerts,
    confirm_alerts,
)
from plant_node.monitoring.chunking import LogColumns  # noqa: E402
from plant_node.monitoring.service import (  # noqa: E402
    ChunkResult,
    FittedMonitor,
    MonitorConfig,
    fit_monitor,
    raised_alerts,
    run_monitor,
)

DATASETS = Path(os.environ.get("MILLWRIGHT_DATASETS", "/work/shared/datasets"))
RESULTS = Path(__file__).parent / "results" / "monitoring.json"
#: Trained and exported baselines (gitignored; reused while the training fingerprint holds).
MODELS_ROOT = Path(__file__).parent / ".cache" / "models"
#: What the demo trains (federation/demo/hub_steps.py DEMO_TRAINING): baseline, plant, epochs.
TRAINING: list[tuple[str, list[str], int]] = [("cmapss", ["--plant", "FD001"], 3), ("ai4i", [], 20)]
SETTINGS = ["setting_1", "setting_2", "setting_3"]
CMAPSS_COLUMNS = ["unit", "cycle", *SETTINGS] + [f"s{i}" for i in range(1, 22)]
SENSORS = [
    "s2",
    "s3",
    "s4",
    "s7",
    "s8",
    "s9",
    "s11",
    "s12",
    "s13",
    "s14",
    "s15",
    "s17",
    "s20",
    "s21",
]
RUL_CAP = 125
CHUNK = 500
SLOTS = 20
STEP_S = 600
AI4I_RAW = [
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
]
AI4I_FEATURES = [*AI4I_RAW, "type_code"]
SEED = 7


# ----------------------------------------------------------------------------- C-MAPSS data
def load_cmapss(split: str, name: str, root: Path = DATASETS / "cmapss") -> pd.DataFrame:
    """Read one C-MAPSS file; test files get their true RUL from ``RUL_FDxxx.txt``."""
    df = pd.read_csv(root / f"{split}_{name}.txt", sep=r"\s+", header=None, names=CMAPSS_COLUMNS)
    last = df.groupby("unit")["cycle"].transform("max")
    if split == "train":
        df["rul"] = last - df["cycle"]
    else:
        rul = pd.read_csv(root / f"RUL_{name}.txt", header=None).iloc[:, 0].to_numpy()
        df["rul"] = rul[df["unit"].to_numpy() - 1] + last - df["cycle"]
    return df


def replay_fleet(
    df: pd.DataFrame,
    *,
    seed: int,
    n_slots: int = SLOTS,
    t0: str = "2026-01-05",
    step_s: int = STEP_S,
) -> pd.DataFrame:
    """Replay unit trajectories as a fleet of positions that run units back to back.

    Units are dealt to the position with the least work so far; each position starts at a
    random cycle of its first unit, so the fleet is in steady state from the first row. The
    stream stops when 30 % of the positions have run out, before the fleet thins.
    """
    rng = np.random.default_rng(seed)
    sizes = df.groupby("unit").size()
    slots: list[list[int]] = [[] for _ in range(n_slots)]
    work = np.zeros(n_slots)
    for unit in rng.permutation(sizes.index.to_numpy()):
        j = int(np.argmin(work))
        slots[j].append(int(unit))
        work[j] += sizes[unit]
    by_unit = dict(tuple(df.groupby("unit")))
    parts = []
    for us in slots:
        seq = pd.concat([by_unit[u] for u in us], ignore_index=True)
        seq = seq.iloc[int(rng.integers(0, sizes[us[0]])) :].copy()
        seq["step"] = np.arange(len(seq))
        parts.append(seq)
    out = pd.concat(parts, ignore_index=True)
    end = np.sort([p["step"].max() for p in parts])[int(n_slots * 0.3)]
    out = out[out["step"] <= end]
    out["timestamp"] = pd.Timestamp(t0) + pd.to_timedelta(out["step"] * step_s, unit="s")
    out["unit_id"] = out["unit"].astype(str)
    return out.sort_values(["timestamp", "unit"]).drop(columns="step").reset_index(drop=True)


def ensure_baselines(root: Path = MODELS_ROOT) -> None:
    """Train and export the demo-sized baselines through ``millwright baselines`` (cached)."""
    from baselines.cli import app

    for baseline, plant_args, epochs in TRAINING:
        for command in ("train", "export"):
            extra = ["--epochs", str(epochs)] if command == "train" else []
            app(
                [command, baseline, *plant_args, *extra, "--root", str(root), "--format", "json"],
                standalone_mode=False,
            )


def load_served(baseline: str, plant: str) -> Any:
    """Load an export as the node does: its ``ModelRuntime`` and serving pipeline's featurizer."""
    from plant_node.serving.pipelines import default_pipelines
    from plant_node.serving.runtime import ModelRuntime

    pipeline = default_pipelines()[baseline]
    runtime = ModelRuntime(baseline, featurizer_factory=pipeline.featurizer)
    return runtime.load(MODELS_ROOT / baseline / plant / "export")


def _describe(model: Any, what: str) -> str:
    meta = model.manifest.metadata
    return (
        f"{what} {meta['recipe_id']} (fingerprint {meta['fingerprint'][:12]}, "
        f"{meta['training']['epochs']:.0f} epochs), OpenVINO {model.manifest.precision.upper()} "
        "export served through the node's ModelRuntime and serving pipeline"
    )


class RulModel:
    """The FD001 RUL CNN export; one prediction per (unit, cycle) from the cycles seen so far."""

    def __init__(self) -> None:
        self.model = load_served("cmapss", "FD001")
        self.window = int(self.model.manifest.metadata["feature_state"]["window"])
        self.name = _describe(self.model, "C-MAPSS FD001 RUL CNN")

    def predict(self, df: pd.DataFrame, history: pd.DataFrame, batch: int = 2048) -> np.ndarray:
        """Predict every row of ``df`` from its unit's last ``window`` cycles up to that row.

        ``history`` holds earlier cycles of the same units that the stream does not replay
        (before the fleet's start), keyed by ``unit_id``. A null reading is held at the unit's
        last value for the model input only: the node's contract would reject the record, and
        the log keeps the null for the integrity layer.
        """
        cols = ["unit_id", "cycle", *SETTINGS, *SENSORS]
        first = df.groupby("unit_id")["cycle"].min()
        hist = history[history["unit_id"].isin(first.index)]
        hist = hist[hist["cycle"] < hist["unit_id"].map(first)]
        frame = pd.concat(
            [hist[cols].assign(_row=-1), df[cols].assign(_row=np.arange(len(df)))],
            ignore_index=True,
        ).sort_values(["unit_id", "cycle"], kind="stable")
        frame[SENSORS] = frame.groupby("unit_id")[SENSORS].ffill()
        items: list[Sequence[dict[str, Any]]] = [[] for _ in range(len(df))]
        for _, unit in frame.groupby("unit_id", sort=False):
            recs = unit[["cycle", *SETTINGS, *SENSORS]].to_dict("records")
            for i, row in enumerate(unit["_row"].to_numpy()):
                if row >= 0:
                    items[row] = recs[max(0, i - self.window + 1) : i + 1]
        out = np.concatenate(
            [self.model.predict_rows(items[i : i + batch])[1] for i in range(0, len(items), batch)]
        )
        return out


def _log(
    df: pd.DataFrame, model: RulModel, rng: np.random.Generator, history: pd.DataFrame
) -> pd.DataFrame:
    out = df.copy()
    out["prediction"] = model.predict(out, history)
    out["label"] = out["rul"].clip(upper=RUL_CAP).astype(float)
    out["latency_ms"] = rng.gamma(4.0, 0.5, len(out))  # serving latency is logged by the node
    return out


def _keyed(df: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
    return df.assign(unit_id=prefix + df["unit"].astype(str))


# ----------------------------------------------------------------------------- AI4I data
def load_ai4i() -> dict[str, pd.DataFrame]:
    """AI4I rows of the baseline's own split (``baselines.plants.ai4i_split``), by part."""
    from baselines import datasets
    from baselines.contracts import get_contract
    from baselines.plants import ai4i_split
    from baselines.recipes import get_recipe

    frame = datasets.load_ai4i()
    # training quarantines contract-breaking rows before splitting; none exist in AI4I 2020
    assert not get_contract("ai4i-raw").validate(frame).bad_rows()
    frame["type_code"] = frame["type"].map({"L": 0, "M": 1, "H": 2}).astype(float)
    parts = ai4i_split(frame, get_recipe("ai4i"))
    return {k: frame.iloc[v].reset_index(drop=True) for k, v in parts.items()}


class FailureModel:
    """The AI4I MLP ensemble export; one failure probability per record."""

    def __init__(self) -> None:
        self.model = load_served("ai4i", "all")
        self.name = _describe(self.model, "AI4I MLP ensemble")

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        records = df[["type", *AI4I_RAW]].to_dict("records")
        return np.asarray(self.model.predict_rows(records)[1], dtype=np.float64)


# ----------------------------------------------------------------------------- scenarios
def _scores(
    results: list[ChunkResult], change: int | None, metric: str, monitor: FittedMonitor
) -> dict[str, Any]:
    alerts = raised_alerts(results)
    perf_rule = next(r for r in monitor.rules if r.kind is AlertKind.PERFORMANCE)
    # once labels are in, a chunk whose realized metric breaches the performance rule is an
    # incident; an alert overlapping one is a true alarm (what the node reports to the hub)
    incidents = [
        (r.chunk, r.chunk)
        for r in results
        for p in r.performance
        if p.metric == metric and p.realized is not None and perf_rule.breaches(p.realized)
    ]
    true_alarms, label_false_alarms = confirm_alerts(
        collect_alerts([e for r in results for e in r.events]), incidents
    )
    first = min(
        (a.raised_chunk for a in alerts if change is not None and a.raised_chunk >= change),
        default=None,
    )
    false = [a for a in alerts if change is None or a.since_chunk < change]
    rows, errs, errs_after, real, errs_ok, real_ok = [], [], [], [], [], []
    for r in results:
        p = next((p for p in r.performance if p.metric == metric), None)
        if p is None:
            continue
        rows.append(
            {
                "chunk": r.chunk,
                "estimated": round(p.estimated, 4),
                "lower": round(p.lower, 4),
                "upper": round(p.upper, 4),
                "realized": None if p.realized is None else round(p.realized, 4),
                "alerts": [e.alert.key for e in r.events if e.type.value == "raised"],
                "unreliable": list(r.unreliable),
            }
        )
        if p.realized is not None:
            errs.append(abs(p.estimated - p.realized))
            real.append(abs(p.realized))
            if not r.unreliable:
                errs_ok.append(abs(p.estimated - p.realized))
                real_ok.append(abs(p.realized))
            if change is not None and r.chunk >= change:
                errs_after.append(abs(p.estimated - p.realized) / max(abs(p.realized), 1e-12))
    return {
        "alerts": len(alerts),
        "detection_delay_chunks": None if change is None or first is None else first - change,
        "estimation_mae_rel": round(float(np.mean(errs) / np.mean(real)), 4) if errs else None,
        "estimation_mae_rel_after_change": round(float(np.mean(errs_after)), 4)
        if errs_after
        else None,
        # what the node vouches for: chunks no integrity or multivariate-drift guard flagged
        "estimation_mae_rel_reliable": round(float(np.mean(errs_ok) / np.mean(real_ok)), 4)
        if errs_ok
        else None,
        "unreliable_chunks": sum(bool(r.unreliable) for r in results),
        "unreliable_reasons": sorted({k for r in results for k in r.unreliable}),
        "false_alarms": len(false),
        # alerts whose span overlaps a chunk where the realized metric (labels) breached the
        # performance rule, vs alerts with no such performance incident (e.g. a drift with
        # no effect on the error): what a node reports as true / false alarms
        "alerts_vs_realized_incidents": {
            "with_incident": true_alarms,
            "without_incident": label_false_alarms,
        },
        "estimation_mae_rel_by_metric": _mae_rel_by_metric(results),
        "change_chunk": change,
        "n_chunks": len(results),
        "metric": metric,
        "alert_log": [a.describe() for a in alerts],
        "chunks": rows,
    }


def _mae_rel_by_metric(results: list[ChunkResult]) -> dict[str, float | None]:
    pairs: dict[str, list[tuple[float, float]]] = {}
    for r in results:
        for p in r.performance:
            if p.realized is not None:
                pairs.setdefault(p.metric, []).append((p.estimated, p.realized))
    out: dict[str, float | None] = {}
    for metric, pr in pairs.items():
        est, real = np.array(pr).T
        denom = float(np.mean(np.abs(real)))
        out[metric] = round(float(np.mean(np.abs(est - real)) / denom), 4) if denom else None
    return out


def _at_chunk(stream: pd.DataFrame, chunk: int) -> pd.Timestamp:
    return pd.Timestamp(stream.sort_values("timestamp")["timestamp"].iloc[chunk * CHUNK])


def _fit_cmapss(
    test1: pd.DataFrame, model: RulModel, seed: int
) -> tuple[FittedMonitor, pd.DataFrame, np.ndarray]:
    """Split FD001 test units in reference and stable halves; fit the monitor on the first."""
    rng = np.random.default_rng(seed)
    units = rng.permutation(test1["unit"].unique())
    ref_units, stable_units = units[:50], units[50:]
    history = _keyed(test1)
    reference = _log(
        replay_fleet(test1[test1["unit"].isin(ref_units)], seed=seed), model, rng, history
    )
    stable = _log(
        replay_fleet(test1[test1["unit"].isin(stable_units)], seed=seed + 1, t0="2026-02-01"),
        model,
        rng,
        history,
    )
    columns = LogColumns(features=tuple(SENSORS), unit="unit_id")
    config = MonitorConfig(
        chunk_size=CHUNK,
        problem="regression",
        metrics=("rmse", "mae"),
        expected_interval_s=STEP_S,
        windowed_inputs=True,  # as the node configures a model that reads cycle windows
    )
    return fit_monitor(reference, columns=columns, config=config), stable, stable_units


def stable_splits(
    seeds: list[int], model: RulModel, ks: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
) -> dict[str, Any]:
    """Repeat the stable scenario over other reference/stable splits of the FD001 test units.

    Also replays each split with other performance-rule widths ``k`` (window 3), to show
    what the default k trades off.
    """
    test1 = load_cmapss("test", "FD001")
    splits: list[dict[str, Any]] = []
    sweep: dict[str, list[int]] = {str(k): [] for k in ks}
    for seed in seeds:
        monitor, stable, _ = _fit_cmapss(test1, model, seed)
        results, _ = run_monitor(monitor, stable)
        s = _scores(results, None, "rmse", monitor)
        splits.append(
            {
                "seed": seed,
                "alerts": s["alerts"],
                "estimation_mae_rel": s["estimation_mae_rel"],
                "unreliable_chunks": s["unreliable_chunks"],
                "alert_log": s["alert_log"],
            }
        )
        old = next(r for r in monitor.rules if r.kind is AlertKind.PERFORMANCE)
        for k in ks:
            rule = AlertRule.control_chart(
                old.key,
                kind=old.kind,
                direction=old.direction,
                reference_mean=old.reference_mean,
                reference_std=old.reference_std,
                k=k,
                k_clear=k / 2,
                window=old.window,
            )
            swept = replace(monitor, rules=[rule])
            res, _ = run_monitor(swept, stable)
            sweep[str(k)].append(len(raised_alerts(res)))
    return {"splits": splits, "performance_alerts_by_k": sweep}


def cmapss_scenarios(
    quick: bool, model: RulModel
) -> tuple[dict[str, Any], FittedMonitor, pd.DataFrame, float]:
    """Fit the C-MAPSS monitor on reference units and run the five C-MAPSS scenarios."""
    rng = np.random.default_rng(SEED)
    test1 = load_cmapss("test", "FD001")
    test3 = load_cmapss("test", "FD003")
    history = _keyed(test1)
    started = time.perf_counter()
    monitor, stable, stable_units = _fit_cmapss(test1, model, SEED)
    fit_s = time.perf_counter() - started
    raw_stable = replay_fleet(
        test1[test1["unit"].isin(stable_units)], seed=SEED + 1, t0="2026-02-01"
    )
    change = 4
    t_change = _at_chunk(raw_stable, change)
    out: dict[str, Any] = {}

    def run(name: str, log: pd.DataFrame, chg: int | None) -> None:
        results, _ = run_monitor(monitor, log)
        out[name] = _scores(results, chg, "rmse", monitor)

    run("stable", stable, None)

    # new fault mode: FD003 units take over the fleet from chunk `change`
    head = raw_stable[raw_stable["timestamp"] < t_change]
    fd3 = replay_fleet(test3, seed=SEED + 2, t0=str(t_change))
    fd3["unit_id"] = "fd003-" + fd3["unit_id"]
    both = pd.concat([history, _keyed(test3, "fd003-")], ignore_index=True)
    run("new_fault_mode", _log(pd.concat([head, fd3], ignore_index=True), model, rng, both), change)

    after = raw_stable["timestamp"] >= t_change
    offset = raw_stable.copy()
    offset.loc[after, "s11"] += 2.0 * monitor.drift.features["s11"].std
    run("sensor_offset", _log(offset, model, rng, history), change)

    stuck = raw_stable.copy()
    stuck["s7"] = stuck.groupby("unit_id")["s7"].transform(
        lambda s: s.where(~after.loc[s.index]).ffill().fillna(s)
    )
    run("stuck_sensor", _log(stuck, model, rng, history), change)

    missing = raw_stable.copy()
    drop = after & (rng.random(len(missing)) < 0.3)
    missing = missing[~drop].copy()
    null = (missing["timestamp"] >= t_change) & (rng.random(len(missing)) < 0.2)
    missing.loc[null, "s4"] = np.nan
    # rows lost upstream never reach the log, so chunks after the change span more time
    run("missing_data", _log(missing, model, rng, history), change)
    return out, monitor, stable, fit_s


def ai4i_scenarios(quick: bool, model: FailureModel) -> dict[str, Any]:
    """Fit the AI4I monitor and run the held-out and covariate-shift streams.

    The reference is the training side of the baseline's split (train + validation, 8,000
    rows, 16 chunks) in time order (UDI): a period of the line's own history, as a node
    takes its first labelled predictions. The validation split alone (1,600 rows) gave
    three calibration chunks, too few for a drift band. The held-out stream is the test
    split, shuffled.
    """
    rng = np.random.default_rng(SEED)
    parts = load_ai4i()
    ref = pd.concat([parts["train"], parts["val"]]).sort_values("udi").reset_index(drop=True)
    held = parts["test"].sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    air, wear = "air_temperature_k", "tool_wear_min"
    val = parts["val"]  # the shift is defined against the validation split, whatever the reference
    z_air = (held[air] - val[air].mean()) / val[air].std()
    z_wear = (held[wear] - val[wear].mean()) / val[wear].std()
    weights = np.exp(1.0 * z_air + 1.0 * z_wear)
    shifted = held.sample(n=3000, replace=True, weights=weights, random_state=SEED)

    def log(rows: pd.DataFrame, t0: str) -> pd.DataFrame:
        out = rows.copy().reset_index(drop=True)
        out["timestamp"] = pd.Timestamp(t0) + pd.to_timedelta(np.arange(len(out)) * 60, unit="s")
        out["unit_id"] = "line-1"
        out["prediction"] = model.predict(out)
        out["label"] = out["machine_failure"].astype(float)
        out["latency_ms"] = rng.gamma(4.0, 0.5, len(out))
        return out

    columns = LogColumns(features=tuple(AI4I_FEATURES), unit="unit_id")
    config = MonitorConfig(
        chunk_size=CHUNK,
        problem="classification_binary",
        metrics=("roc_auc", "f1"),
        expected_interval_s=60,
        integrity_window=30,
    )
    monitor = fit_monitor(log(ref, "2026-03-01"), columns=columns, config=config)
    stable = log(held, "2026-03-10")
    out: dict[str, Any] = {}
    results, _ = run_monitor(monitor, stable)
    out["ai4i_heldout"] = _scores(results, None, "roc_auc", monitor)
    stream = log(pd.concat([held, shifted], ignore_index=True), "2026-03-10")
    results, _ = run_monitor(monitor, stream)
    out["ai4i_covariate_shift"] = _scores(results, len(held) // CHUNK, "roc_auc", monitor)
    return out


def time_job(
    monitor: FittedMonitor, stable: pd.DataFrame, n_rows: int = 100_000
) -> tuple[float, float]:
    """Wall and CPU seconds (best of two) of one run over ``n_rows`` predictions on one core."""
    tiles = []
    span = stable["timestamp"].max() - stable["timestamp"].min() + pd.Timedelta(seconds=STEP_S)
    for i in range(int(np.ceil(n_rows / len(stable)))):
        t = stable.copy()
        t["timestamp"] = t["timestamp"] + i * span
        t["unit_id"] = t["unit_id"] + f"-{i}"
        tiles.append(t)
    log = pd.concat(tiles, ignore_index=True).iloc[:n_rows]
    pinned = hasattr(os, "sched_setaffinity")
    if pinned:
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(before)})
    walls, cpus = [], []
    try:
        for _ in range(2):
            started, cpu = time.perf_counter(), time.process_time()
            results, _ = run_monitor(monitor, log)
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
    finally:
        if pinned:
            os.sched_setaffinity(0, before)
    assert sum(r.n_rows for r in results) == n_rows
    return min(walls), min(cpus)


def run(quick: bool = False) -> dict[str, Any]:
    """Run every scenario, print the table and write ``benchmarks/results/monitoring.json``."""
    ensure_baselines()
    rul_model, failure_model = RulModel(), FailureModel()
    load_before = os.getloadavg()
    scenarios, monitor, stable, fit_s = cmapss_scenarios(quick, rul_model)
    scenarios.update(ai4i_scenarios(quick, failure_model))
    splits = stable_splits([SEED] if quick else [SEED + 10 * i for i in range(6)], rul_model)
    job_s, job_cpu_s = time_job(monitor, stable)
    result = {
        "scenarios": scenarios,
        "job_seconds_100k": round(job_s, 2),
        "job_cpu_seconds_100k": round(job_cpu_s, 2),
        "fit_seconds_cmapss_reference": round(fit_s, 2),
        "chunk_size": CHUNK,
        "stable_splits": splits,
        "models": {"cmapss": rul_model.name, "ai4i": failure_model.name},
        "meta": {
            "cpu_count": os.cpu_count(),
            "load_average_1_5_15_at_start": [round(x, 2) for x in load_before],
            "load_average_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],
            "quick": quick,
        },
        "notes": [
            "Models are the baselines' own (millwright baselines train/export, demo-sized "
            "epochs), served as the node serves them: the OpenVINO export via ModelRuntime (the "
            "precision each answers with is in models), features from the node's serving "
            "pipeline. AI4I reference: the training side of the baseline's split (train + "
            "validation, 8,000 rows, in UDI order; the weights saw the train rows); held-out "
            "stream: its test split.",
            "C-MAPSS predictions: one per (unit, cycle), the window over the unit's cycles so far "
            "(front-padded under 30 cycles, as the pipeline does); in missing_data a null s4 is "
            "held at the unit's last reading for the model input (the node's contract would "
            "reject the record) while the log keeps the null.",
            "fit_seconds_cmapss_reference includes serving the reference and stable logs "
            "through the model.",
            "C-MAPSS reference: 50 FD001 test units; stable: the other 50, both replayed as "
            "a 20-position fleet; stable_splits repeats this over other random splits.",
            "Estimation error on C-MAPSS is dominated by which units a chunk holds: the model's "
            "error is unit-specific and no per-row estimator sees it; see stable_splits.",
            "new_fault_mode is a concept shift (the RUL relationship changes): DLE learned the "
            "error structure of FD001 and cannot estimate the FD003 error (it underestimates); "
            "detection there comes from multivariate and feature drift.",
            "sensor_offset, stuck_sensor and missing_data change the model's inputs, so the "
            "labels no longer relate to the observed inputs as in the reference (not a "
            "covariate shift): DLE cannot know the error of inputs it never saw. The node "
            "flags such chunks (unreliable: the integrity or multivariate-drift rules they "
            "breach, thresholds from the reference) and reports the reasons instead of a "
            "number; estimation_mae_rel counts every chunk, estimation_mae_rel_reliable only "
            "the chunks the node vouches for. Null inputs reach DLE as the unit's last "
            "reading (LightGBM would read them as 0).",
            "ai4i_covariate_shift resamples real held-out rows towards high air temperature and "
            "tool wear, so labels stay real (pure covariate shift, where CBPE should hold).",
            "job_seconds_100k: drift + integrity + DLE estimation + alert rules over 100,000 "
            "logged predictions (200 chunks), process pinned to one core, best of two runs; "
            "fitting excluded. Wall time depends on what else the machine runs; the CPU time "
            "is the load-independent figure.",
        ],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    head = f"{'scenario':24} {'alerts':>6} {'false':>5} {'delay':>5} {'est. MAE rel':>12}"
    print(f"{head} {'reliable':>8} {'flagged':>7}  metric")
    for name, s in scenarios.items():
        delay = "-" if s["detection_delay_chunks"] is None else s["detection_delay_chunks"]
        mae = "-" if s["estimation_mae_rel"] is None else f"{s['estimation_mae_rel']:.3f}"
        ok = s["estimation_mae_rel_reliable"]
        ok_s = "-" if ok is None else f"{ok:.3f}"
        flagged = f"{s['unreliable_chunks']}/{s['n_chunks']}"
        alerts, false = s["alerts"], s["false_alarms"]
        print(
            f"{name:24} {alerts:>6} {false:>5} {delay!s:>5} {mae:>12} {ok_s:>8} {flagged:>7}"
            f"  {s['metric']}"
        )
    print(f"monitoring job over 100k predictions: {job_s:.1f} s wall, {job_cpu_s:.1f} s CPU")
    return result


if __name__ == "__main__":
    run()
