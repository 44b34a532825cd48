"""The steps of a campaign on the SuperLink: start, follow, and register what it produced.

Each step reads the campaign row, acts, and writes the row back through
:mod:`hub.campaigns.service`; everything a later step needs is on the row or in the
campaign's work directory, so a restarted hub picks up where it stopped (it follows a
running campaign again by its stored Flower run id).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import os
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from federation.apps.protocol import CALIB_TEMPERATURE_KEY, CALIB_THRESHOLD_KEY
from federation.baselines_publish import MEDIA_TYPE, pack_export
from federation.errors import NotFound
from federation.flower.results import read_results
from federation.flower.runner import RunNotFound, reconcile_results, start_run
from federation.schemas.campaigns import CampaignFailureCode, CampaignStatus
from federation.schemas.federated_run import FederatedRunResult, Lineage, RunOutcome
from federation.schemas.registry import VersionCreate
from hub.campaigns import service
from hub.campaigns.models import Campaign
from hub.db import begin_write, utcnow
from hub.recipes import service as recipe_service
from hub.registry import service as registry_service
from hub.registry.artifacts import ArtifactStore

if TYPE_CHECKING:
    from federation.flower.control import ControlClient, RunConfigValue, RunState

log = logging.getLogger(__name__)

#: Repository root: the export subprocess imports ``baselines`` from it.
REPO_ROOT = Path(__file__).resolve().parents[2]
#: File of the parent export holding its torch weights (``baselines.export.WEIGHTS_FILE``).
WEIGHTS_FILE = "weights.npz"
EXPORT_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class CampaignPaths:
    """Where one campaign keeps its files (on the SuperLink's machine)."""

    root: Path

    @property
    def results(self) -> Path:
        """The run's results document (the ServerApp rewrites it every round)."""
        return self.root / "results.json"

    @property
    def model(self) -> Path:
        """The final global weights."""
        return self.root / "global.npz"

    @property
    def parent(self) -> Path:
        """The parent version's unpacked export."""
        return self.root / "parent"

    def export(self, name: str) -> Path:
        """Directory of one OpenVINO export made from the campaign's weights."""
        return self.root / "exports" / name


def paths_for(work_dir: Path, campaign_id: int) -> CampaignPaths:
    """Return the work directory of a campaign."""
    return CampaignPaths(Path(work_dir).resolve() / f"campaign-{campaign_id}")


def deadline_passed(campaign: Campaign, now: dt.datetime | None = None) -> bool:
    """Tell whether a running campaign has had far more time than its rounds can take."""
    if campaign.started_at is None:
        return False
    budget = campaign.rounds * (2 * campaign.round_timeout_seconds + 60) + 300
    if campaign.personalize_epochs:
        budget += campaign.round_timeout_seconds
    return (now or utcnow()) - campaign.started_at > dt.timedelta(seconds=budget)


# ----------------------------------------------------------------------- start


def _unpack_parent(session: Session, store: ArtifactStore, campaign: Campaign, dest: Path) -> None:
    parent = registry_service.get_version_or_raise(
        session=session, version_id=campaign.parent_version_id
    )
    if dest.exists() and any(dest.glob("*.json")):
        return
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(store.path_for(str(parent.artifact_digest))) as tar:
        tar.extractall(dest, filter="data")


def run_config(session: Session, campaign: Campaign, paths: CampaignPaths) -> dict[str, Any]:
    """Return the Flower run config of a campaign (``federation/apps/run_settings.py`` keys)."""
    model = registry_service.get_model_by_id(session=session, model_id=campaign.model_id)
    recipe = recipe_service.get_recipe_or_raise(session=session, recipe_id=campaign.recipe_id)
    parent = registry_service.get_version_or_raise(
        session=session, version_id=campaign.parent_version_id
    )
    hp = dict(recipe.hyperparameters)
    federation = hp.get("federation") if isinstance(hp.get("federation"), dict) else {}
    assert model is not None
    config: dict[str, Any] = {
        "baseline": model.dataset,
        "strategy": campaign.strategy,
        "num-server-rounds": campaign.rounds,
        "local-epochs": campaign.local_epochs,
        "min-participants": campaign.min_participants,
        "round-timeout": float(campaign.round_timeout_seconds),
        "node-wait-timeout": float(min(60.0, campaign.round_timeout_seconds)),
        "personalize-epochs": campaign.personalize_epochs,
        "max-samples-per-plant": int(campaign.options.get("max_samples_per_plant", 0)),
        "max-units-per-plant": int(campaign.options.get("max_units_per_plant", 0)),
        "campaign-id": str(campaign.id),
        "parent-version": f"{model.name}:{parent.version}",
        "plants": ",".join(campaign.plants),
    }
    if "lr" in hp:
        config["learning-rate"] = float(hp["lr"])
    if "batch_size" in hp:
        config["batch-size"] = int(hp["batch_size"])
    if "seed" in hp:
        config["seed"] = int(hp["seed"])
    if federation and "proximal_mu" in federation:
        config["proximal-mu"] = float(federation["proximal_mu"])
    for knob in ("server_learning_rate", "server_momentum"):
        if federation and federation.get(knob) is not None:
            config[knob.replace("_", "-")] = float(federation[knob])
    privacy = campaign.options.get("privacy")
    if privacy:
        config["dp-clipping-norm"] = float(privacy["clipping_norm"])
        config["dp-noise-multiplier"] = float(privacy["noise_multiplier"])
    if (paths.parent / WEIGHTS_FILE).exists():
        config["initial-weights-path"] = str(paths.parent / WEIGHTS_FILE)
    return config


def start_campaign(
    *, session: Session, campaign: Campaign, control: ControlClient, store: ArtifactStore,
    work_dir: Path,
) -> None:
    """Unpack the parent export, map SuperNodes to plants and start the Flower run."""
    paths = paths_for(work_dir, campaign.id)
    _unpack_parent(session, store, campaign, paths.parent)
    config: dict[str, RunConfigValue] = run_config(session, campaign, paths)
    # SuperNodes are registered under their plant id (``flwr supernode register --name``).
    # Every named node goes into the map, not only the campaign's: the ServerApp lets a node
    # it cannot place take part, so a node left out of the map (another plant's) trained too.
    node_plants = {n.node_id: n.name for n in control.list_nodes() if n.name}
    run_id = start_run(
        control, run_config=config, results_path=paths.results, model_path=paths.model,
        node_plants=node_plants,
    )
    begin_write(session)  # the Flower calls took a while: end the stale read (SQLite)
    service.mark_running(session=session, campaign=campaign, flower_run_id=run_id)
    log.info("campaign %s started as Flower run %s", campaign.id, run_id)


# ---------------------------------------------------------------------- follow


def _failure_of(result: FederatedRunResult | None, sub_status: str) -> tuple[CampaignFailureCode,
                                                                            str]:
    if result is not None and result.failure is not None:
        return CampaignFailureCode(result.failure.code.value), result.failure.detail
    return CampaignFailureCode.INTERNAL, f"Flower run finished:{sub_status} without results"


def follow_campaign(
    *, session: Session, campaign: Campaign, control: ControlClient, store: ArtifactStore,
    work_dir: Path,
) -> None:
    """Copy progress from the results file; act on cancel, timeout and the run's end."""
    paths = paths_for(work_dir, campaign.id)
    run_id = int(str(campaign.flower_run_id))
    try:
        state: RunState | None = control.run_state(run_id)
    except RunNotFound as err:
        state, lost = None, err
    begin_write(session)  # after the Control API call, not across it (SQLite)
    result = read_results(paths.results)
    if result is not None:
        service.record_progress(session=session, campaign=campaign, result=result)
    if state is None:  # nothing to wait for: a run the SuperLink forgot never comes back
        done = f"after {campaign.rounds_completed} of {campaign.rounds} rounds"
        if campaign.cancel_requested:
            service.finish(session=session, campaign=campaign, status=CampaignStatus.CANCELLED,
                           failure_detail=f"cancelled {done}; {lost}")
        else:
            service.finish(
                session=session, campaign=campaign, status=CampaignStatus.FAILED,
                failure_code=CampaignFailureCode.RUN_LOST,
                failure_detail=f"{lost} (it restarted without its state database): the run is "
                f"lost {done}",
            )
        return
    if not state.finished:
        if campaign.cancel_requested:
            control.stop_run(run_id)
        elif deadline_passed(campaign):
            control.stop_run(run_id)
            service.finish(
                session=session, campaign=campaign, status=CampaignStatus.FAILED,
                failure_code=CampaignFailureCode.TIMEOUT,
                failure_detail=f"Flower run {run_id} did not finish in time; it was stopped "
                f"after {campaign.rounds_completed} of {campaign.rounds} rounds",
            )
        return
    result = reconcile_results(paths.results, state)
    if result is not None:
        service.record_progress(session=session, campaign=campaign, result=result)
    if campaign.cancel_requested:
        service.finish(
            session=session, campaign=campaign, status=CampaignStatus.CANCELLED,
            failure_detail=f"cancelled after {campaign.rounds_completed} of "
            f"{campaign.rounds} rounds",
        )
    elif result is not None and result.status == RunOutcome.SUCCEEDED and result.model:
        service.mark_registering(session=session, campaign=campaign)
        register_campaign(session=session, campaign=campaign, store=store, work_dir=work_dir)
    else:
        code, detail = _failure_of(result, state.sub_status)
        service.finish(
            session=session, campaign=campaign, status=CampaignStatus.FAILED,
            failure_code=code, failure_detail=detail,
        )


# -------------------------------------------------------------------- register


class ExportFailed(RuntimeError):
    """The export subprocess failed."""


@dataclass(frozen=True)
class ExportJob:
    """One ``.npz`` to export as an OpenVINO directory."""

    weights: Path
    out: Path
    plant: str | None
    lineage: dict[str, Any]
    feature_state: Path | None = None
    #: A classifier's ``temperature`` and ``threshold`` for these weights (None: the parent's).
    calibration: dict[str, float] | None = None


def export_in_subprocess(jobs: list[ExportJob], parent: Path, jobs_file: Path) -> None:
    """Run ``baselines.export.federated`` once for every job (it imports torch, the hub not)."""
    jobs_file.parent.mkdir(parents=True, exist_ok=True)
    jobs_file.write_text(json.dumps([
        {"weights": str(j.weights), "parent": str(parent), "out": str(j.out), "plant": j.plant,
         "lineage": j.lineage,
         "feature_state": None if j.feature_state is None else str(j.feature_state),
         "calibration": j.calibration}
        for j in jobs
    ]), encoding="utf-8")
    cmd = [sys.executable, "-m", "baselines.export.federated", str(jobs_file)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        dict.fromkeys([str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    )
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        cmd, capture_output=True, text=True, env=env, timeout=EXPORT_TIMEOUT_SECONDS, check=False
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ExportFailed(f"export of {len(jobs)} model(s) failed ({done.returncode}): {tail}")


def _upload(session: Session, store: ArtifactStore, directory: Path, actor: str) -> str:
    blob = pack_export(directory)
    digest = hashlib.sha256(blob).hexdigest()

    async def chunks() -> AsyncIterator[bytes]:
        yield blob

    staged = asyncio.run(store.stage(chunks(), max_bytes=len(blob) + 1))
    registry_service.register_artifact(
        session=session, store=store, staged=staged, declared_digest=digest,
        media_type=MEDIA_TYPE, actor=actor,
    )
    return digest


def _register(session: Session, version_in: VersionCreate, actor: str) -> int:
    """Register a version; a restarted hub finds the one it registered before."""
    try:
        existing = registry_service.get_version_by_label_or_raise(
            session=session, model=version_in.model, version=version_in.version
        )
        return existing.id
    except NotFound:
        pass
    return registry_service.create_version(session=session, version_in=version_in, actor=actor).id


def _last_metrics(result: FederatedRunResult) -> dict[str, float]:
    for record in reversed(result.rounds):
        if record.evaluate.aggregated:
            return {k: float(v) for k, v in record.evaluate.aggregated.items()}
    return {}


def calibration_of(metrics: dict[str, float] | None) -> dict[str, float] | None:
    """Return a classifier's calibration from reported metrics (None if they carry none)."""
    if not metrics or CALIB_TEMPERATURE_KEY not in metrics or CALIB_THRESHOLD_KEY not in metrics:
        return None
    return {"temperature": float(metrics[CALIB_TEMPERATURE_KEY]),
            "threshold": float(metrics[CALIB_THRESHOLD_KEY])}


def global_calibration(result: FederatedRunResult) -> dict[str, float] | None:
    """Return the fleet calibration of the final global model.

    Each plant calibrates the global model it evaluates on its own validation split; the
    final round's example-weighted average of those fits belongs to the saved weights (an
    earlier round's would belong to other weights, so it is never used).
    """
    final = [r for r in result.rounds if r.round == result.rounds_completed]
    return calibration_of(final[0].evaluate.aggregated) if final else None


def export_jobs(
    result: FederatedRunResult, paths: CampaignPaths, lineage: dict[str, Any]
) -> list[ExportJob]:
    """Return the global model's export job, then one per personalized model."""
    assert result.model is not None
    jobs = [ExportJob(Path(result.model.path), paths.export("global"), None, lineage,
                      calibration=global_calibration(result))]
    jobs += [
        ExportJob(Path(item.path), paths.export(f"plant-{item.plant_id}"), item.plant_id,
                  {**lineage, "personalized_for": item.plant_id},
                  None if item.feature_state_path is None else Path(item.feature_state_path),
                  calibration=calibration_of(item.calibration))
        for item in result.personalized
    ]
    return jobs


def register_campaign(
    *, session: Session, campaign: Campaign, store: ArtifactStore, work_dir: Path
) -> None:
    """Export, upload and register the global model and each personalized model."""
    paths = paths_for(work_dir, campaign.id)
    result = read_results(paths.results)
    if result is None or result.model is None:
        service.finish(session=session, campaign=campaign, status=CampaignStatus.FAILED,
                       failure_code=CampaignFailureCode.INTERNAL,
                       failure_detail="the run succeeded but left no model file")
        return
    model = registry_service.get_model_by_id(session=session, model_id=campaign.model_id)
    assert model is not None
    actor = f"campaign-{campaign.id}"
    lineage: Lineage = result.model.lineage
    lineage_doc = {
        "campaign_id": campaign.id,
        "parent_version_id": campaign.parent_version_id,
        "strategy": lineage.strategy,
        "rounds": lineage.rounds,
        "participants": lineage.participants,
        "samples_per_plant": lineage.samples_per_plant,
        "local_epochs": campaign.local_epochs,
        "min_participants": campaign.min_participants,
        "privacy": campaign.options.get("privacy"),
        "started_from": "parent" if (paths.parent / WEIGHTS_FILE).exists() else "recipe",
    }
    tags = {
        "source": "federated",
        "campaign": str(campaign.id),
        "strategy": lineage.strategy,
        "rounds": str(lineage.rounds),
        "participants": ",".join(lineage.participants)[:256],
        "samples_per_plant": ",".join(f"{p}={n}" for p, n in lineage.samples_per_plant.items())[
            :256
        ],
        "baseline": model.dataset,
        "format": "openvino-ir",
        "precisions": "fp32",
    }
    try:
        jobs = export_jobs(result, paths, lineage_doc)
        export_in_subprocess(jobs, paths.parent, paths.root / "export-jobs.json")
        # The export took seconds: writers that committed meanwhile made this read stale
        # (SQLite refuses its upgrade to a write at once); take the write lock afresh.
        begin_write(session)
        digest = _upload(session, store, jobs[0].out, actor)
        global_id = _register(
            session,
            VersionCreate(
                model=model.name, version=f"fed-c{campaign.id}",
                parent_id=campaign.parent_version_id, recipe_id=campaign.recipe_id,
                artifact_digest=digest,
                training_data_fingerprint=f"campaign-{campaign.id}:{result.model.sha256}",
                hyperparameters={"federated": lineage_doc},
                metrics=_last_metrics(result),
                tags={**tags, "plant": "all"},
                description=f"campaign {campaign.id}: {lineage.strategy}, {lineage.rounds} "
                f"rounds on {', '.join(lineage.participants)}",
            ),
            actor,
        )
        personalized: dict[str, int] = {}
        for item, job in zip(result.personalized, jobs[1:], strict=True):
            digest = _upload(session, store, job.out, actor)
            personalized[item.plant_id] = _register(
                session,
                VersionCreate(
                    model=model.name, version=f"fed-c{campaign.id}-{item.plant_id.lower()}",
                    plant_id=item.plant_id, parent_id=global_id, recipe_id=campaign.recipe_id,
                    artifact_digest=digest,
                    training_data_fingerprint=f"campaign-{campaign.id}:{item.sha256}",
                    hyperparameters={
                        "federated": {**lineage_doc, "personalized_for": item.plant_id,
                                      "personalize_epochs": campaign.personalize_epochs,
                                      "num_examples": item.num_examples},
                    },
                    metrics=item.metrics_after,
                    tags={**tags, "plant": item.plant_id, "personalized": "true"},
                    description=f"campaign {campaign.id}, fine-tuned on {item.plant_id}",
                ),
                actor,
            )
    except (ExportFailed, subprocess.TimeoutExpired, OSError) as err:
        service.finish(session=session, campaign=campaign, status=CampaignStatus.FAILED,
                       failure_code=CampaignFailureCode.EXPORT_FAILED, failure_detail=str(err))
        return
    service.finish(
        session=session, campaign=campaign, status=CampaignStatus.SUCCEEDED,
        version_id=global_id, personalized_version_ids=personalized,
    )


def advance(
    *, session: Session, campaign_id: int, control: ControlClient, store: ArtifactStore,
    work_dir: Path,
) -> None:
    """Take the next step of one campaign, whatever state it is in."""
    campaign = service.get_campaign_or_raise(session=session, campaign_id=campaign_id)
    status = CampaignStatus(campaign.status)
    kwargs: dict[str, Any] = {
        "session": session, "campaign": campaign, "store": store, "work_dir": work_dir
    }
    if status is CampaignStatus.QUEUED:
        start_campaign(control=control, **kwargs)
    elif status in (CampaignStatus.RUNNING, CampaignStatus.CANCELLING):
        follow_campaign(control=control, **kwargs)
    elif status is CampaignStatus.REGISTERING:
        register_campaign(**kwargs)
