"""The ClientApp a plant's SuperNode runs: local training and evaluation on its own data.

The SuperNode's node config names the plant (``plant-id``) and where its data lives
(``data-dir``); the run config names the baseline task and the recipe knobs. Only
weights (``ArrayRecord``), numbers (``MetricRecord``) and the plant id leave the plant.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    MetricRecordValues,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod
from flwr.clientapp.typing import ClientAppCallable

from federation.apps.arrays import from_record, to_record
from federation.apps.protocol import (
    CALIB_TEMPERATURE_KEY,
    CALIB_THRESHOLD_KEY,
    CALIBRATION_KEY,
    FEATURE_STATE_KEY,
    PERSONALIZE_ACTION,
    PLANT_ID_KEY,
    PLANT_RECORD_KEY,
)
from federation.apps.run_settings import RunSettings
from federation.apps.tasks import FederatedTask, PlantArrays, Weights, get_task

KEY_CLIPPING_NORM = "clipping_norm"


def _optional_clipping_mod(msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
    """Apply Flower's ``fixedclipping_mod`` only when the server asked for DP clipping."""
    config = msg.content.config_records.get("config")
    if config is not None and KEY_CLIPPING_NORM in config:
        return fixedclipping_mod(msg, ctxt, call_next)
    return call_next(msg, ctxt)


app = ClientApp()


def _plant_id(context: Context) -> str:
    plant = context.node_config.get("plant-id")
    if not isinstance(plant, str) or not plant:
        raise ValueError("this SuperNode has no plant-id in its node config")
    return plant


def _data_dir(context: Context) -> Path | None:
    value = context.node_config.get("data-dir")
    return Path(str(value)) if value else None


def _load(task: FederatedTask, settings: RunSettings, context: Context) -> PlantArrays:
    # A plant's own limits (node config, e.g. a new plant) win over the run's.
    max_units = int(context.node_config.get("max-units", 0) or settings.max_units_per_plant)
    max_samples = int(context.node_config.get("max-samples", 0) or settings.max_samples_per_plant)
    return task.load_data(
        _plant_id(context),
        _data_dir(context),
        max_samples=max_samples or None,
        seed=settings.seed,
        max_units=max_units or None,
    )


def _apply_fault(settings: RunSettings, plant: str, sent: Weights, new: Weights) -> Weights:
    """Corrupt this plant's update when the run config asks for it (tests, benchmarks)."""
    if settings.fault_plant != plant:
        return new
    if settings.fault_mode == "nan":
        return {k: np.full_like(v, np.nan) for k, v in new.items()}
    if settings.fault_mode == "scale100":
        return {k: (sent[k] + 100.0 * (v - sent[k])).astype(v.dtype) for k, v in new.items()}
    return new


def _reply(
    msg: Message, plant: str, content: dict[str, ArrayRecord | MetricRecord | ConfigRecord]
) -> Message:
    records = RecordDict(
        {**content, PLANT_RECORD_KEY: ConfigRecord({PLANT_ID_KEY: plant})}
    )
    return Message(records, reply_to=msg)


@app.train(mods=[_optional_clipping_mod])
def train(msg: Message, context: Context) -> Message:
    """Train the received global model for ``local-epochs`` on this plant's data."""
    settings = RunSettings.from_run_config(dict(context.run_config))
    plant = _plant_id(context)
    if settings.fault_plant == plant and settings.fault_mode == "stall":
        time.sleep(settings.fault_stall_seconds)
    task = get_task(settings.baseline)
    data = _load(task, settings, context)
    config = msg.content.config_records.get("config", ConfigRecord())
    global_weights = from_record(msg.content.array_records["arrays"])
    server_round = int(config.get("server-round", 0))  # type: ignore[arg-type]
    new, metrics = task.fit(
        global_weights,
        data,
        epochs=settings.local_epochs,
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
        proximal_mu=float(config.get("proximal-mu", 0.0)),  # type: ignore[arg-type]
        seed=settings.seed + server_round,
    )
    new = _apply_fault(settings, plant, global_weights, new)
    return _reply(
        msg,
        plant,
        {
            "arrays": to_record(new),
            "metrics": MetricRecord({**metrics, "num-examples": int(len(data.x_train))}),
        },
    )


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Evaluate the received global model on this plant's test split."""
    settings = RunSettings.from_run_config(dict(context.run_config))
    plant = _plant_id(context)
    task = get_task(settings.baseline)
    data = _load(task, settings, context)
    metrics = task.evaluate(from_record(msg.content.array_records["arrays"]), data)
    return _reply(
        msg, plant, {"metrics": MetricRecord({**metrics, "num-examples": int(len(data.x_test))})}
    )


@app.train(PERSONALIZE_ACTION)
def personalize(msg: Message, context: Context) -> Message:
    """Fine-tune the final global model's head on this plant's data; report before/after."""
    settings = RunSettings.from_run_config(dict(context.run_config))
    plant = _plant_id(context)
    task = get_task(settings.baseline)
    data = _load(task, settings, context)
    global_weights = from_record(msg.content.array_records["arrays"])
    before = task.evaluate(global_weights, data)
    new, _ = task.fit(
        global_weights,
        data,
        epochs=settings.personalize_epochs,
        learning_rate=settings.personalize_learning_rate or settings.learning_rate / 4,
        batch_size=settings.batch_size,
        proximal_mu=0.0,
        seed=settings.seed,
        head_only=settings.personalize_head_only,
    )
    after = task.evaluate(new, data)
    metrics: dict[str, MetricRecordValues] = {
        **{f"before-{k}": v for k, v in before.items()},
        **{f"after-{k}": v for k, v in after.items()},
        "num-examples": int(len(data.x_train)),
    }
    content: dict[str, ArrayRecord | MetricRecord | ConfigRecord] = {
        "arrays": to_record(new),
        "metrics": MetricRecord(metrics),
    }
    if data.feature_state is not None:
        # The personalized model is only right with the normalization it was tuned under:
        # per-sensor means and deviations of this plant (aggregates, never rows).
        content[FEATURE_STATE_KEY] = ConfigRecord({"json": json.dumps(data.feature_state)})
    if CALIB_TEMPERATURE_KEY in after and CALIB_THRESHOLD_KEY in after:
        # A classifier's calibration, fitted on this plant's validation split for the
        # personalized weights (two numbers; it is not in the exchanged weights).
        content[CALIBRATION_KEY] = ConfigRecord(
            {k: after[k] for k in (CALIB_TEMPERATURE_KEY, CALIB_THRESHOLD_KEY)}
        )
    return _reply(msg, plant, content)
