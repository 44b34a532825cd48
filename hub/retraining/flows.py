"""Use cases of retraining: receive a plant's request, decide it by policy, record why.

A request is checked (the plant runs the model, the policy is a published retraining
policy naming that trigger), decided by :func:`hub.retraining.service.decide`, stored and
recorded on the audit trail in one transaction. A redelivered request (same plant, same id)
returns the stored decision and is not decided again.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from federation.errors import InvalidInput, NotFound
from federation.schemas.retraining import RetrainingChain, RetrainingRequestCreate
from hub.audit import service as audit_service
from hub.governance import service as governance_service
from hub.registry import service as registry_service
from hub.retraining import service
from hub.retraining.models import RetrainingRequest
from policies import Evidence, evidence_sha256
from policies.retraining import RetrainingPolicy, Trigger

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
    entry = audit_service.append(
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
    row.audit_seq = entry.seq
    session.commit()
    return row, True


def chain_of(*, session: Session, row: RetrainingRequest) -> RetrainingChain:
    """Why a model changed: the request, its decision's audit, its candidate and promotion."""
    subjects = [service.subject(row.plant_id, row.request_id)]
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
