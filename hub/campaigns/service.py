"""Campaigns: validate and record requests, report progress, and the worker's state changes.

The request side (create, read, list, cancel) and the worker side (running, round records,
final outcome) both live here so that every change of a campaign row goes through one module.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.errors import Conflict, InvalidInput, NotFound
from federation.flower.results import RunRecorder
from federation.schemas.campaigns import (
    CampaignCreate,
    CampaignFailureCode,
    CampaignRead,
    CampaignStatus,
    PrivacyOptions,
)
from federation.schemas.federated_run import FederatedRunResult, RoundRecord
from federation.schemas.recipes import RecipeStatus
from federation.schemas.rollouts import WebhookEvent
from hub.audit import service as audit_service
from hub.campaigns.models import Campaign, CampaignRound
from hub.db import commit_or_conflict, utcnow
from hub.idempotency import service as idempotency_service
from hub.idempotency.service import IdempotencyKey
from hub.pagination import decode_token, scalar_page
from hub.recipes import service as recipe_service
from hub.registry import service as registry_service
from hub.webhooks import service as webhooks_service

#: Baselines the Flower apps can train (``federation.apps.tasks``); a model's ``dataset``.
FEDERATED_BASELINES = ("cmapss", "ai4i")
#: Statuses the worker still has to act on.
ACTIVE = (
    CampaignStatus.QUEUED,
    CampaignStatus.RUNNING,
    CampaignStatus.CANCELLING,
    CampaignStatus.REGISTERING,
)


def _allowed_strategies(hyperparameters: dict[str, Any]) -> list[str] | None:
    federation = hyperparameters.get("federation")
    if isinstance(federation, dict) and isinstance(federation.get("allowed_strategies"), list):
        return [str(s) for s in federation["allowed_strategies"]]
    return None


def _validate(session: Session, campaign_in: CampaignCreate) -> int:
    """Check every reference of a request; return the model's id. Raises before any write."""
    model = registry_service.get_model_or_raise(session=session, name=campaign_in.model)
    if model.dataset not in FEDERATED_BASELINES:
        raise InvalidInput(
            f"baseline model '{model.name}' is a '{model.dataset or 'unknown'}' model; campaigns "
            f"can train {', '.join(FEDERATED_BASELINES)} models only."
        )
    parent = registry_service.get_version(session=session, version_id=campaign_in.parent_version_id)
    if parent is None:
        raise NotFound(
            f"parent version {campaign_in.parent_version_id} does not exist; list versions of "
            f"'{model.name}' to find its id."
        )
    if parent.model_id != model.id:
        raise InvalidInput(
            f"parent version {parent.id} is a version of '{parent.model.name}', not of "
            f"'{model.name}'."
        )
    if not parent.artifact_digest:
        raise InvalidInput(
            f"parent version {parent.id} has no artifact; a campaign starts from an exported model."
        )
    recipe = recipe_service.get_recipe_or_raise(session=session, recipe_id=campaign_in.recipe_id)
    if recipe.status != RecipeStatus.PUBLISHED:
        raise Conflict(
            f"recipe {recipe.id} is a draft; publish it before running a campaign on it."
        )
    allowed = _allowed_strategies(recipe.hyperparameters)
    if allowed is not None and campaign_in.strategy.value not in allowed:
        raise InvalidInput(
            f"recipe {recipe.id} allows the strategies {', '.join(allowed)}, not "
            f"'{campaign_in.strategy.value}'."
        )
    missing = [
        p
        for p in campaign_in.plants
        if registry_service.get_plant(session=session, plant_id=p) is None
    ]
    if missing:
        raise NotFound(
            f"plant(s) {', '.join(missing)} are not enrolled; enroll them before a campaign."
        )
    return model.id


def create_campaign(
    *,
    session: Session,
    campaign_in: CampaignCreate,
    actor: str,
    idem: IdempotencyKey | None = None,
) -> Campaign:
    """Validate and queue a campaign; the worker starts it on the SuperLink.

    Raises
    ------
    NotFound
        When the model, parent version, recipe or a plant does not exist.
    InvalidInput
        When the parent is not a version of the model, has no artifact, the model is not a
        federated baseline or the recipe does not allow the strategy.
    Conflict
        When the recipe is still a draft.
    """
    scope = "create_campaign"
    req_hash = idempotency_service.request_hash(scope, campaign_in)
    ref = idempotency_service.find_replay(
        session=session, idem=idem, scope=scope, req_hash=req_hash
    )
    if ref is not None:
        return get_campaign_or_raise(session=session, campaign_id=int(ref))
    model_id = _validate(session, campaign_in)
    options: dict[str, Any] = {
        "max_samples_per_plant": campaign_in.max_samples_per_plant,
        "max_units_per_plant": campaign_in.max_units_per_plant,
    }
    if campaign_in.privacy is not None:
        options["privacy"] = campaign_in.privacy.model_dump(mode="json")
    campaign = Campaign(
        model_id=model_id,
        parent_version_id=campaign_in.parent_version_id,
        recipe_id=campaign_in.recipe_id,
        plants=list(campaign_in.plants),
        strategy=campaign_in.strategy.value,
        rounds=campaign_in.rounds,
        local_epochs=campaign_in.local_epochs,
        min_participants=campaign_in.min_participants,
        personalize_epochs=campaign_in.personalize_epochs,
        round_timeout_seconds=campaign_in.round_timeout_seconds,
        options=options,
        status=CampaignStatus.QUEUED.value,
        created_by=actor,
    )
    session.add(campaign)
    session.flush()
    idempotency_service.remember(
        session=session, idem=idem, scope=scope, req_hash=req_hash, resource_ref=str(campaign.id)
    )
    audit_service.append(
        session=session,
        actor=actor,
        action="campaign.start",
        subject=f"campaign/{campaign.id}",
        after=campaign_in.model_dump(mode="json"),
    )
    commit_or_conflict(session, detail="the campaign was created concurrently; retry")
    return campaign


def get_campaign(*, session: Session, campaign_id: int) -> Campaign | None:
    """Return the campaign with this id, or None."""
    return session.get(Campaign, campaign_id)


def get_campaign_or_raise(*, session: Session, campaign_id: int) -> Campaign:
    """Return the campaign with this id.

    Raises
    ------
    NotFound
        When no campaign has this id.
    """
    campaign = get_campaign(session=session, campaign_id=campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} does not exist; list campaigns to find its id.")
    return campaign


def round_records(*, session: Session, campaign_id: int) -> list[RoundRecord]:
    """Return the campaign's finished rounds, in order."""
    rows = session.scalars(
        select(CampaignRound)
        .where(CampaignRound.campaign_id == campaign_id)
        .order_by(CampaignRound.round)
    )
    return [RoundRecord.model_validate(r.record) for r in rows]


def to_read(*, session: Session, campaign: Campaign, with_rounds: bool = True) -> CampaignRead:
    """Return the wire view of a campaign (``with_rounds=False``: without round records)."""
    model = registry_service.get_model_by_id(session=session, model_id=campaign.model_id)
    privacy = campaign.options.get("privacy")
    return CampaignRead(
        id=campaign.id,
        model=model.name if model is not None else "",
        parent_version_id=campaign.parent_version_id,
        recipe_id=campaign.recipe_id,
        plants=list(campaign.plants),
        strategy=campaign.strategy,
        rounds=campaign.rounds,
        local_epochs=campaign.local_epochs,
        min_participants=campaign.min_participants,
        personalize_epochs=campaign.personalize_epochs,
        privacy=PrivacyOptions.model_validate(privacy) if privacy else None,
        round_timeout_seconds=campaign.round_timeout_seconds,
        max_samples_per_plant=int(campaign.options.get("max_samples_per_plant", 0)),
        max_units_per_plant=int(campaign.options.get("max_units_per_plant", 0)),
        status=campaign.status,
        failure_code=campaign.failure_code,
        failure_detail=campaign.failure_detail,
        flower_run_id=campaign.flower_run_id,
        rounds_completed=campaign.rounds_completed,
        round_records=(
            round_records(session=session, campaign_id=campaign.id) if with_rounds else []
        ),
        rejections=campaign.rejections,
        dropouts=campaign.dropouts,
        participants=list(campaign.participants),
        samples_per_plant=dict(campaign.samples_per_plant),
        version_id=campaign.version_id,
        personalized_version_ids=dict(campaign.personalized_version_ids),
        created_at=campaign.created_at,
        created_by=campaign.created_by,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
    )


def list_campaigns(
    *, session: Session, status: CampaignStatus | None, page_size: int, page_token: str | None
) -> tuple[list[Campaign], str | None]:
    """One page of campaigns ordered by id, optionally of one status."""
    filters = {"status": status}
    after = decode_token(page_token, filters, int)
    stmt = select(Campaign)
    if status is not None:
        stmt = stmt.where(Campaign.status == status.value)
    return scalar_page(
        session=session,
        stmt=stmt,
        key=Campaign.id,
        after=after,
        page_size=page_size,
        filters=filters,
    )


def cancel_campaign(*, session: Session, campaign_id: int, actor: str = "system") -> Campaign:
    """Cancel a campaign: at once when queued, else the worker stops its Flower run.

    Cancelling a campaign that is already being cancelled, or was cancelled, is a no-op.

    Raises
    ------
    NotFound
        When the campaign does not exist.
    Conflict
        When it already succeeded or failed, or is registering its result.
    """
    campaign = get_campaign_or_raise(session=session, campaign_id=campaign_id)
    status = CampaignStatus(campaign.status)
    if status in (CampaignStatus.CANCELLED, CampaignStatus.CANCELLING):
        return campaign
    if status.final or status is CampaignStatus.REGISTERING:
        raise Conflict(
            f"campaign {campaign_id} is {status.value}; only queued or running campaigns can "
            "be cancelled."
        )
    campaign.cancel_requested = True
    if status is CampaignStatus.QUEUED:
        campaign.status = CampaignStatus.CANCELLED.value
        campaign.failure_detail = "cancelled before it started"
        campaign.finished_at = utcnow()
        _announce_finished(session=session, campaign=campaign)
    else:
        campaign.status = CampaignStatus.CANCELLING.value
    audit_service.append(
        session=session,
        actor=actor,
        action="campaign.cancel",
        subject=f"campaign/{campaign.id}",
        before={"status": status.value},
        after={"status": campaign.status},
    )
    session.commit()
    return campaign


# ------------------------------------------------------------------ worker side


def active_campaign_ids(*, session: Session) -> list[int]:
    """Ids of the campaigns the worker still has to act on, oldest first."""
    stmt = (
        select(Campaign.id)
        .where(Campaign.status.in_([s.value for s in ACTIVE]))
        .order_by(Campaign.id)
    )
    return list(session.scalars(stmt))


def mark_running(*, session: Session, campaign: Campaign, flower_run_id: int) -> None:
    """Record that the Flower run started (the id lets a restarted hub follow it again)."""
    campaign.flower_run_id = str(flower_run_id)
    if campaign.status == CampaignStatus.QUEUED:
        campaign.status = CampaignStatus.RUNNING.value
    campaign.started_at = utcnow()
    session.commit()


def record_progress(*, session: Session, campaign: Campaign, result: FederatedRunResult) -> None:
    """Copy finished rounds, rejections, drop-outs and participation from the results file."""
    known = {
        r
        for (r,) in session.execute(
            select(CampaignRound.round).where(CampaignRound.campaign_id == campaign.id)
        )
    }
    for record in result.rounds:
        if record.round <= result.rounds_completed and record.round not in known:
            session.add(
                CampaignRound(
                    campaign_id=campaign.id,
                    round=record.round,
                    record=record.model_dump(mode="json"),
                )
            )
    recorder = RunRecorder(None, result)
    campaign.rounds_completed = result.rounds_completed
    campaign.rejections = [r.model_dump(mode="json") for r in result.rejections]
    campaign.dropouts = [d.model_dump(mode="json") for d in result.dropouts]
    campaign.participants = recorder.participants()
    campaign.samples_per_plant = recorder.samples_per_plant()
    session.commit()


def mark_registering(*, session: Session, campaign: Campaign) -> None:
    """Record that the run succeeded and the worker now exports and registers its models."""
    campaign.status = CampaignStatus.REGISTERING.value
    session.commit()


def finish(
    *,
    session: Session,
    campaign: Campaign,
    status: CampaignStatus,
    failure_code: CampaignFailureCode | None = None,
    failure_detail: str = "",
    version_id: int | None = None,
    personalized_version_ids: dict[str, int] | None = None,
) -> None:
    """Put the campaign in a final state (webhook ``campaign.finished`` the first time)."""
    was_final = CampaignStatus(campaign.status).final
    campaign.status = status.value
    campaign.failure_code = failure_code.value if failure_code is not None else None
    campaign.failure_detail = failure_detail[:2000]
    if version_id is not None:
        campaign.version_id = version_id
    if personalized_version_ids:
        campaign.personalized_version_ids = dict(personalized_version_ids)
    campaign.finished_at = utcnow()
    if not was_final:
        _announce_finished(session=session, campaign=campaign)
    session.commit()


def finished_summary(*, session: Session, campaign: Campaign) -> dict[str, Any]:
    """Return the summary a ``campaign.finished`` webhook carries (counts, not lists)."""
    read = to_read(session=session, campaign=campaign, with_rounds=False)
    return {
        "campaign_id": read.id,
        "model": read.model,
        "status": read.status,
        "failure_code": read.failure_code,
        "failure_detail": read.failure_detail,
        "strategy": read.strategy,
        "rounds": read.rounds,
        "rounds_completed": read.rounds_completed,
        "plants": read.plants,
        "participants": read.participants,
        "rejections": len(read.rejections),
        "dropouts": len(read.dropouts),
        "parent_version_id": read.parent_version_id,
        "version_id": read.version_id,
        "personalized_version_ids": read.personalized_version_ids,
        "created_by": read.created_by,
        "started_at": read.started_at,
        "finished_at": read.finished_at,
    }


def _announce_finished(*, session: Session, campaign: Campaign) -> None:
    webhooks_service.enqueue(
        session=session,
        event=WebhookEvent.CAMPAIGN_FINISHED,
        data=finished_summary(session=session, campaign=campaign),
    )
