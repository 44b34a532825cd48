"""Use cases of retraining: receive a plant's request, decide it by policy, record why.

A request is checked (the plant runs the model, the policy is a published retraining
policy naming that trigger), decided by :func:`hub.retraining.service.decide`, stored and
recorded on the audit trail in one transaction. A redelivered request (same plant, same id)
returns the stored decision and is not decided again.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from federation.errors import InvalidInput, MillwrightError, NotFound
from federation.schemas.auth import Principal, Role
from federation.schemas.campaigns import CampaignCreate, CampaignStatus, CampaignStrategy
from federation.schemas.governance import PromotionCreate
from federation.schemas.retraining import (
    CandidateOutcome,
    RetrainingChain,
    RetrainingDecision,
    RetrainingRequestCreate,
)
from hub.audit import service as audit_service
from hub.auth import service as auth_service
from hub.campaigns import service as campaigns_service
from hub.governance import flows as governance_flows
from hub.governance import service as governance_service
from hub.registry import service as registry_service
from hub.registry.artifacts import ArtifactStore
from hub.retraining import service
from hub.retraining.models import RetrainingRequest
from policies import Evidence, evidence_sha256
from policies.retraining import RetrainingPolicy, Trigger

#: Who signs what the hub does on its own (automatic promotion of a retrained candidate).
SYSTEM = Principal(
    token_id=0, user_id=0, username="system", printed_name="Millwright system",
    role=Role.ADMIN, name="system",
)
#: Local epochs per round, and personalisation epochs, of a retraining campaign.
LOCAL_EPOCHS = 1
PERSONALIZE_EPOCHS = 1
_PROMOTION_OUTCOME = {
    "approved": CandidateOutcome.PROMOTED,
    "pending_approval": CandidateOutcome.AWAITING_APPROVAL,
}

#: Audit entries shown per subject in a chain (a request has one; a promotion a few).
MAX_CHAIN_ENTRIES = 200


def _policy_and_trigger(
    session: Session, request_in: RetrainingRequestCreate
) -> tuple[RetrainingPolicy, Trigger]:
    row = governance_service.get_policy_by_ref_or_raise(session=session, ref=request_in.policy)
    document = governance_service.document_of(row)
    if not isinstance(document, RetrainingPolicy):
        raise InvalidInput(
            f"Policy {request_in.policy} is a {document.kind.value} policy, not a retraining "
            "policy.",
            errors=[{"path": "policy", "message": "not a retraining policy"}],
        )
    trigger = service.find_trigger(document, request_in.trigger)
    if trigger is None:
        names = ", ".join(t.name for t in document.triggers)
        raise InvalidInput(
            f"Policy {request_in.policy} has no trigger '{request_in.trigger}' (it has: {names}).",
            errors=[{"path": "trigger", "message": "not a trigger of this policy"}],
        )
    if trigger.kind != request_in.condition.value:
        raise InvalidInput(
            f"Trigger '{trigger.name}' of {request_in.policy} is a {trigger.kind} trigger, "
            f"not {request_in.condition.value}.",
            errors=[{"path": "condition", "message": "does not match the trigger's kind"}],
        )
    return document, trigger


def receive_request(
    *, session: Session, actor: str, plant_id: str, request_in: RetrainingRequestCreate
) -> tuple[RetrainingRequest, bool]:
    """Store and decide a plant's retraining request; idempotent on ``(plant, id)``.

    Returns
    -------
    tuple[RetrainingRequest, bool]
        The stored request and whether it was created now (``False``: a redelivery).

    Raises
    ------
    Forbidden
        When the plant does not run the model (per the hub's assignments).
    InvalidInput
        When the policy is not a retraining policy, has no such trigger, or the version is
        not of the model.
    NotFound
        When the plant, version or policy does not exist.
    Conflict
        When the id was already used for a different request.
    """
    request_in = service.in_utc(request_in)
    existing = service.find_request(session=session, plant_id=plant_id, request_id=request_in.id)
    if existing is not None:
        service.check_redelivery(existing, request_in)
        return existing, False
    service.check_request(session=session, plant_id=plant_id, request_in=request_in)
    policy, trigger = _policy_and_trigger(session, request_in)
    history = service.history_of(session=session, plant_id=plant_id, request_in=request_in)
    outcome = service.decide(
        policy=policy, trigger=trigger, plant_id=plant_id, request_in=request_in, history=history
    )
    try:
        row = service.add_request(
            session=session, plant_id=plant_id, request_in=request_in, outcome=outcome
        )
    except IntegrityError:  # the same request delivered twice at once: the first one won
        session.rollback()
        row = service.get_request_or_raise(
            session=session, plant_id=plant_id, request_id=request_in.id
        )
        service.check_redelivery(row, request_in)
        return row, False
    audit_service.append(
        session=session,
        actor=actor,
        action="retraining.decide",
        subject=service.subject(plant_id, request_in.id),
        after={
            "decision": outcome.decision.value,
            "plants": outcome.plants,
            "model": request_in.model,
            "version_id": request_in.version_id,
            "policy": request_in.policy,
            "trigger": request_in.trigger,
            "condition": request_in.condition.value,
            "evaluation": outcome.evaluation,
            "evidence_sha256": evidence_sha256(
                Evidence(plant=plant_id, values=dict(request_in.evidence))
            ),
        },
        reason="; ".join(outcome.reasons),
    )
    session.commit()
    return row, True


def _record_candidate(
    session: Session, row: RetrainingRequest, outcome: CandidateOutcome, why: list[str]
) -> None:
    """Set the candidate's outcome, add the reasons and audit it (commits)."""
    row.candidate_outcome = outcome.value
    row.reasons = [*row.reasons, *why][-20:]
    audit_service.append(
        session=session,
        actor=auth_service.actor_name(SYSTEM),
        action="retraining.candidate",
        subject=service.subject(row.plant_id, row.request_id),
        after={
            "outcome": outcome.value,
            "campaign_id": row.campaign_id,
            "candidate_version_id": row.candidate_version_id,
            "promotion_id": row.promotion_id,
        },
        reason="; ".join(why),
    )
    session.commit()


def start_training(
    *, session: Session, row: RetrainingRequest, actor: str, rounds: int
) -> RetrainingRequest:
    """Start the candidate's training as a campaign; the campaign worker runs it.

    The campaign runs Flower in a separate process (:mod:`hub.campaigns`), so torch never
    loads here. A local fine-tune is a campaign of the requesting plant alone, a federated
    one spans the plants showing the change; both personalise for each plant. A campaign
    that cannot start (the version has no recipe or artifact, ...) records the candidate
    ``training_failed`` with the reason. While a campaign already trains a candidate for
    the plant, no second one starts: the request joins it (settled with it when the
    campaign is another plant's federated one; only linked when it is the plant's own).
    """
    if row.decision not in (
        RetrainingDecision.LOCAL_FINE_TUNE.value, RetrainingDecision.FEDERATED.value
    ) or row.candidate_outcome is not None:
        return row
    running = [
        r for r in service.training_for(session=session, model=row.model, plant_id=row.plant_id)
        if r.campaign_id is not None and not CampaignStatus(
            campaigns_service.get_campaign_or_raise(
                session=session, campaign_id=r.campaign_id
            ).status
        ).final
    ]
    if running:
        # No second campaign while one already trains for this plant: a federated campaign
        # that covers it settles this request too; one of its own is only linked.
        first = running[0]
        row.campaign_id = first.campaign_id
        own = any(r.plant_id == row.plant_id for r in running)
        row.candidate_outcome = None if own else CandidateOutcome.TRAINING.value
        row.reasons = [
            *row.reasons,
            f"joins campaign {first.campaign_id} already training for {row.plant_id} "
            f"(request {first.plant_id}/{first.request_id})"
            + ("; that request's candidate decides" if own else ""),
        ][-20:]
        session.commit()
        return row
    version = registry_service.get_version_or_raise(session=session, version_id=row.version_id)
    plants = list(row.plants) or [row.plant_id]
    if version.recipe_id is None:
        _record_candidate(
            session, row, CandidateOutcome.TRAINING_FAILED,
            [f"could not start training: version {version.id} names no recipe"],
        )
        return row
    try:
        campaign = campaigns_service.create_campaign(
            session=session,
            campaign_in=CampaignCreate(
                model=row.model, parent_version_id=row.version_id, recipe_id=version.recipe_id,
                plants=plants, strategy=CampaignStrategy.FEDAVG, rounds=rounds,
                local_epochs=LOCAL_EPOCHS, min_participants=len(plants),
                personalize_epochs=PERSONALIZE_EPOCHS,
            ),
            actor=actor,
        )
    except MillwrightError as err:
        session.rollback()
        _record_candidate(
            session, row, CandidateOutcome.TRAINING_FAILED,
            [f"could not start training: {err.detail}"],
        )
        return row
    row.campaign_id = campaign.id
    row.candidate_outcome = CandidateOutcome.TRAINING.value
    session.commit()
    return row


def settle_candidate(
    *, session: Session, store: ArtifactStore, row_id: int, gate: str
) -> CandidateOutcome | None:
    """Take a finished campaign's candidate through validation and the promotion gate.

    A failed or cancelled campaign records ``training_failed``. The candidate (the
    version personalised for the requesting plant, else the global one) is validated on
    the plant's recent labelled window (its metrics after personalisation) and on the
    fleet holdout (the global model's aggregated evaluation): worse than the champion on
    either records ``validation_failed`` and nothing is promoted. Otherwise the hub asks
    the ``gate`` for the promotion as the system identity: a gate needing no approvals
    promotes at once (signed and recorded), otherwise the request waits for people.

    Returns
    -------
    CandidateOutcome | None
        The new outcome, or ``None`` while the campaign still runs.
    """
    row = service.get_by_id_or_raise(session=session, row_id=row_id)
    if row.candidate_outcome != CandidateOutcome.TRAINING.value or row.campaign_id is None:
        return None
    campaign = campaigns_service.get_campaign_or_raise(
        session=session, campaign_id=row.campaign_id
    )
    status = CampaignStatus(campaign.status)
    if status in (CampaignStatus.FAILED, CampaignStatus.CANCELLED):
        _record_candidate(
            session, row, CandidateOutcome.TRAINING_FAILED,
            [f"campaign {campaign.id} {status.value}: {campaign.failure_code or ''} "
             f"{campaign.failure_detail}".strip()],
        )
        return CandidateOutcome.TRAINING_FAILED
    if status is not CampaignStatus.SUCCEEDED or campaign.version_id is None:
        return None
    personal = campaign.personalized_version_ids.get(row.plant_id)
    candidate_id = int(personal) if personal is not None else campaign.version_id
    row.candidate_version_id = candidate_id
    champion = registry_service.get_version_or_raise(session=session, version_id=row.version_id)
    candidate = registry_service.get_version_or_raise(session=session, version_id=candidate_id)
    checks = [("plant window", candidate)]
    if candidate_id != campaign.version_id:
        fleet = registry_service.get_version_or_raise(
            session=session, version_id=campaign.version_id
        )
        checks.append(("fleet holdout", fleet))
    why: list[str] = []
    ok = True
    for label, version in checks:
        no_worse, lines = service.compare_to_champion(version.metrics, champion.metrics)
        ok = ok and no_worse
        why.append(f"{label} (version {version.id}): {', '.join(lines)}")
    if not ok:
        _record_candidate(
            session, row, CandidateOutcome.VALIDATION_FAILED,
            ["candidate worse than the champion, not promoted: " + "; ".join(why)],
        )
        return CandidateOutcome.VALIDATION_FAILED
    try:
        promoted = governance_flows.request_promotion(
            session=session, store=store, principal=SYSTEM,
            promotion_in=PromotionCreate(
                version_id=candidate_id, plant_id=row.plant_id, policy=gate,
                reason=f"retraining {row.plant_id}/{row.request_id} ({row.trigger})",
            ),
        )
    except MillwrightError as err:
        session.rollback()
        row = service.get_by_id_or_raise(session=session, row_id=row_id)
        row.candidate_version_id = candidate_id
        _record_candidate(
            session, row, CandidateOutcome.REFUSED, [*why, f"promotion refused: {err.detail}"]
        )
        return CandidateOutcome.REFUSED
    row = service.get_by_id_or_raise(session=session, row_id=row_id)
    row.candidate_version_id = candidate_id
    row.promotion_id = promoted.promotion.id
    outcome = _PROMOTION_OUTCOME.get(promoted.promotion.status, CandidateOutcome.REFUSED)
    _record_candidate(
        session, row, outcome,
        [*why, f"promotion {promoted.promotion.id} {promoted.promotion.status} (gate {gate})"],
    )
    return outcome


def chain_of(*, session: Session, row: RetrainingRequest) -> RetrainingChain:
    """Why a model changed: the request, its decision, campaign, candidate and promotion."""
    subjects = [service.subject(row.plant_id, row.request_id)]
    if row.campaign_id is not None:
        subjects.append(f"campaign/{row.campaign_id}")
    if row.promotion_id is not None:
        subjects.append(f"promotion/{row.promotion_id}")
    entries = []
    for subject in subjects:
        page, _ = audit_service.list_entries(
            session=session,
            filters=audit_service.AuditFilters(subject=subject),
            page_size=MAX_CHAIN_ENTRIES,
            page_token=None,
        )
        entries.extend(page)
    entries.sort(key=lambda e: e.seq)
    candidate = (
        registry_service.get_version_read_or_raise(
            session=session, version_id=row.candidate_version_id
        )
        if row.candidate_version_id is not None
        else None
    )
    promotion = None
    if row.promotion_id is not None:
        promotion = governance_service.promotion_read(
            session=session,
            promotion=governance_service.get_promotion_or_raise(
                session=session, promotion_id=row.promotion_id
            ),
        )
    return RetrainingChain(
        request=service.to_read(row), audit=entries, candidate=candidate, promotion=promotion
    )


def why_version(*, session: Session, version_id: int) -> RetrainingChain:
    """Return the chain of the retraining whose candidate is this version.

    Raises
    ------
    NotFound
        When the version does not exist or no retraining produced it.
    """
    registry_service.get_version_or_raise(session=session, version_id=version_id)
    row = service.request_of_candidate(session=session, version_id=version_id)
    if row is None:
        raise NotFound(f"Version {version_id} was not produced by a retraining request.")
    return chain_of(session=session, row=row)
