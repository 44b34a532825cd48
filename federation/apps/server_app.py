"""The ServerApp: runs one federated fine-tuning campaign on the SuperLink.

It builds the strategy named by run config, runs the rounds, keeps the results file at
``results-path`` current after every round, and on success saves the global weights to
``model-path`` (numpy ``.npz``, with a ``.lineage.json`` beside it). A run that cannot
meet ``min-participants`` ends ``failed`` with the reason in the results file, and the
ServerApp raises so Flower also reports the run as failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp

from federation.apps.arrays import first_copy, to_record
from federation.apps.protocol import CALIBRATION_KEY, FEATURE_STATE_KEY, PERSONALIZE_ACTION
from federation.apps.run_settings import RunSettings, parse_node_plants, parse_plants
from federation.apps.tasks import Weights, get_task
from federation.schemas.federated_run import (
    FailureCode,
    Lineage,
    ModelArtifact,
    PersonalizedModel,
)
from federation.strategies import ParticipationError, RunRecorder, build_strategy

app = ServerApp()


def _model_path(settings: RunSettings) -> Path | None:
    if settings.model_path is not None:
        return settings.model_path
    if settings.results_path is not None:
        return settings.results_path.with_name(settings.results_path.stem + "-model.npz")
    return None


def _initial_weights(settings: RunSettings) -> Weights:
    """Start from the parent model's ``.npz`` when given, else the recipe's initialization.

    An ensemble parent contributes its first copy (:func:`first_copy`).
    """
    if settings.initial_weights_path is None:
        return get_task(settings.baseline).initial_weights(settings.seed)
    with np.load(settings.initial_weights_path) as f:
        return first_copy({name: f[name] for name in f.files})


def save_model(
    arrays: ArrayRecord, path: Path, lineage: Lineage
) -> ModelArtifact:
    """Write the global weights as ``.npz`` and their lineage beside them.

    Parameters
    ----------
    arrays : ArrayRecord
        Final global weights.
    path : Path
        Destination ``.npz`` file.
    lineage : Lineage
        Where the weights came from.

    Returns
    -------
    ModelArtifact
        Path, sha256 and array names of the saved file, with the lineage.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    named = {name: array.numpy() for name, array in arrays.items()}
    with path.open("wb") as f:
        np.savez(f, **named)  # type: ignore[arg-type]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    artifact = ModelArtifact(
        path=str(path), sha256=digest, array_names=list(named), lineage=lineage
    )
    path.with_suffix(".lineage.json").write_text(
        artifact.model_dump_json(indent=2), encoding="utf-8"
    )
    return artifact


def personalize(
    grid: Grid,
    arrays: ArrayRecord,
    node_ids: list[int],
    settings: RunSettings,
    model_path: Path,
    plant_of: Callable[[int], str],
) -> list[PersonalizedModel]:
    """Ask each plant to fine-tune the final global model; save each plant's copy.

    Plants that do not answer within ``round-timeout`` (or answer with an error or
    non-finite weights) simply get no personalized model.
    """
    messages = [
        Message(
            RecordDict({"arrays": arrays, "config": ConfigRecord({})}),
            message_type=f"{MessageType.TRAIN}.{PERSONALIZE_ACTION}",
            dst_node_id=node_id,
        )
        for node_id in node_ids
    ]
    out: list[PersonalizedModel] = []
    for reply in grid.send_and_receive(messages, timeout=settings.round_timeout):
        if reply.has_error():
            continue
        plant = plant_of(reply.metadata.src_node_id)
        record = reply.content.array_records["arrays"]
        if not all(np.all(np.isfinite(a.numpy())) for a in record.values()):
            continue
        metrics = dict(reply.content.metric_records["metrics"])
        path = model_path.with_name(f"{model_path.stem}-{plant}.npz")
        named = {name: a.numpy() for name, a in record.items()}
        with path.open("wb") as f:
            np.savez(f, **named)  # type: ignore[arg-type]
        state_path = None
        if FEATURE_STATE_KEY in reply.content.config_records:
            state_path = path.with_suffix(".feature_state.json")
            state_path.write_text(
                str(reply.content.config_records[FEATURE_STATE_KEY]["json"]), encoding="utf-8"
            )
        calibration = reply.content.config_records.get(CALIBRATION_KEY)
        out.append(
            PersonalizedModel(
                plant_id=plant,
                path=str(path),
                sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                num_examples=int(cast(float, metrics.pop("num-examples", 0))),
                metrics_before={k.removeprefix("before-"): float(cast(float, v))
                                for k, v in metrics.items() if k.startswith("before-")},
                metrics_after={k.removeprefix("after-"): float(cast(float, v))
                               for k, v in metrics.items() if k.startswith("after-")},
                feature_state_path=None if state_path is None else str(state_path),
                calibration=None if calibration is None else {
                    k: float(cast(float, v)) for k, v in calibration.items()},
            )
        )
    return sorted(out, key=lambda m: m.plant_id)


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the campaign described by ``context.run_config``."""
    settings = RunSettings.from_run_config(dict(context.run_config))
    recorder = RunRecorder.start(
        settings.results_path,
        baseline=settings.baseline,
        strategy=settings.strategy,
        rounds_planned=settings.num_server_rounds,
        min_participants=settings.min_participants,
        campaign_id=settings.campaign_id or None,
    )
    try:
        strategy, guard = build_strategy(
            settings.strategy,
            recorder=recorder,
            min_participants=settings.min_participants,
            max_update_norm=settings.max_update_norm or None,
            node_wait_timeout=settings.node_wait_timeout,
            node_plants=parse_node_plants(settings.node_plants),
            plants=parse_plants(settings.plants),
            proximal_mu=settings.proximal_mu,
            trim_beta=settings.trim_beta,
            server_learning_rate=settings.server_learning_rate,
            server_momentum=settings.server_momentum,
            dp_noise_multiplier=settings.dp_noise_multiplier,
            dp_clipping_norm=settings.dp_clipping_norm,
        )
        initial = to_record(_initial_weights(settings))
        result = strategy.start(
            grid=grid,
            initial_arrays=initial,
            num_rounds=settings.num_server_rounds,
            timeout=settings.round_timeout,
            train_config=ConfigRecord({"local-epochs": settings.local_epochs}),
        )
    except ParticipationError as err:
        recorder.fail(err.code, err.detail, server_round=err.server_round)
        raise
    except Exception as err:
        recorder.fail(FailureCode.INTERNAL, f"{type(err).__name__}: {err}")
        raise
    if recorder.result.rounds_completed < settings.num_server_rounds or not len(result.arrays):
        done = recorder.result.rounds_completed
        detail = f"{done} of {settings.num_server_rounds} rounds completed"
        recorder.fail(FailureCode.NO_VALID_UPDATES, detail)
        raise RuntimeError(detail)
    run_config = {
        k: v for k, v in dict(context.run_config).items() if isinstance(v, str | int | float | bool)
    }
    lineage = Lineage(
        campaign_id=settings.campaign_id or None,
        parent_version=settings.parent_version or None,
        baseline=settings.baseline,
        strategy=settings.strategy,
        rounds=recorder.result.rounds_completed,
        participants=recorder.participants(),
        samples_per_plant=recorder.samples_per_plant(),
        run_config=run_config,
    )
    path = _model_path(settings)
    artifact = save_model(result.arrays, path, lineage) if path is not None else None
    if settings.personalize_epochs > 0 and path is not None:
        last = recorder.result.rounds_completed
        recorder.result.personalized = personalize(
            grid, result.arrays, guard.accepted_nodes(last), settings, path, guard.plant_of
        )
    recorder.succeed(artifact)
