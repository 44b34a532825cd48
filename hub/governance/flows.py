"""Promotion use cases: request (gate on evidence), approve/reject (e-signed), break-glass.

The champion alias is written only here. Each use case commits once: the request, its
frozen evidence and decision, every signature, the alias change, the lifecycle states and
their audit entries land together or not at all. The one exception is a failed signing
attempt, which is recorded (``signature.failed``) in a transaction of its own after
everything else was rolled back, so a wrong secret changes nothing but the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.attributes import set_committed_value

from federation.errors import Conflict, ErrorCode, Forbidden, InvalidInput, Unauthenticated
from federation.schemas.auth import Principal
from federation.schemas.governance import (
    STATE_OF_ALIAS,
    BreakGlassCreate,
    LifecycleState,
    PromotionCreate,
    PromotionStatus,
    SignatureCreate,
    SignatureMeaning,
)
from federation.schemas.registry import AliasName
from federation.schemas.rollouts import WebhookEvent
from hub.audit import service as audit_service
from hub.auth import service as auth_service
from hub.db import commit_or_conflict, utcnow
from hub.governance import evidence as evidence_mod
from hub.governance import service
from hub.governance.models import Promotion, StoredPolicy
from hub.registry import service as registry_service
from hub.registry.artifacts import ArtifactStore
from hub.registry.models import ModelVersion
from hub.webhooks import service as webhooks_service
from policies import Decision, Evidence, PromotionGatePolicy, evaluate, evidence_sha256


class Promoted(NamedTuple):
    """A promotion request and the version it is about (kept loaded for the answer)."""

    promotion: Promotion
    version: ModelVersion


#: States of a version that has been live at the plant before (returning to it is a rollback).
_WAS_LIVE = frozenset({LifecycleState.RETIRED, LifecycleState.ROLLED_BACK})


def _subject(promotion: Promotion) -> str:
    return f"promotion/{promotion.id}"


def _decision_record(decision: Decision, refusals: list[str]) -> dict[str, Any]:
    """Freeze the decision for the record; preconditions refuse whatever the gate says."""
    record = decision.model_dump(mode="json")
    record["refusals"] = refusals
    if refusals:
        record["passed"] = False
        record["summary"] = "promotion refused: " + "; ".join(refusals)
        if not decision.passed:
            record["summary"] += f"; {decision.summary}"
    return record


def _preconditions(version: ModelVersion, values: dict[str, Any]) -> list[str]:
    """Refusals that no policy can waive: no artifact, or bytes that no longer match."""
    if version.artifact_digest is None:
        return [f"version {version.id} has no artifact"]
    if values.get("artifact.verified") is not True:
        return [
            f"artifact sha256:{version.artifact_digest[:12]}... of version {version.id} is "
            "missing from the artifact store or its bytes do not match the digest"
        ]
    return []


def _check_target(version: ModelVersion, plant_id: str) -> None:
    if version.plant_id is not None and version.plant_id != plant_id:
        raise InvalidInput(
            f"version {version.id} was fine-tuned for plant '{version.plant_id}'; it cannot be "
            f"promoted at plant '{plant_id}'."
        )


def _gate_policy(
    session: Session, ref: str, row: StoredPolicy | None = None
) -> tuple[str, PromotionGatePolicy]:
    if row is None:
        row = service.get_policy_by_ref_or_raise(session=session, ref=ref)
    document = service.document_of(row)
    if not isinstance(document, PromotionGatePolicy):
        raise InvalidInput(
            f"policy {row.ref} is a {row.kind} policy; a promotion needs a promotion_gate policy."
        )
    return row.ref, document


def check_gate(
    *, session: Session, store: ArtifactStore, version: ModelVersion, plant_id: str, policy: str
) -> dict[str, Any]:
    """Evaluate a promotion gate for a version at a plant without recording anything.

    Returns the decision record a request would freeze (``passed``, ``summary``,
    ``results``, ``refusals``); used to refuse a rollout up front.
    """
    _, gate = _gate_policy(session, policy)
    gathered = evidence_mod.gather(session=session, store=store, version=version, plant_id=plant_id)
    refusals = _preconditions(version, dict(gathered.evidence.values))
    return _decision_record(evaluate(gate, gathered.evidence), refusals)


def request_promotion(
    *, session: Session, store: ArtifactStore, principal: Principal, promotion_in: PromotionCreate
) -> Promoted:
    """Evaluate the gate on fresh evidence and record the request with its decision.

    The request is ``refused`` (with the decision's reasons) when the gate fails or the
    artifact is missing or altered, and ``pending_approval`` otherwise. A policy that
    requires no approvals (``approvals.required: 0``, e.g. for campaign outcomes) approves
    and applies it at once, recorded as such.

    Raises
    ------
    NotFound
        When the version, plant or policy does not exist.
    InvalidInput
        When the policy is not a promotion gate or the version belongs to another plant.
    Conflict
        When the same version, plant and alias already has a pending request.
    """
    actor = auth_service.actor_name(principal)
    # Two queries: the version, plant, artifact row and champion; the policy and any
    # pending request for the same target.
    target = registry_service.promotion_target_or_raise(
        session=session, version_id=promotion_in.version_id, plant_id=promotion_in.plant_id
    )
    version = target.version
    _check_target(version, promotion_in.plant_id)
    row, pending_id = service.gate_and_pending(
        session=session,
        ref=promotion_in.policy,
        version_id=version.id,
        plant_id=promotion_in.plant_id,
        alias=promotion_in.alias,
    )
    ref, policy = _gate_policy(session, promotion_in.policy, row)
    if pending_id is not None:
        raise Conflict(
            f"promotion {pending_id} of version {version.id} to {promotion_in.alias.value} at "
            f"{promotion_in.plant_id} is already pending approval."
        )
    gathered = evidence_mod.gather(
        session=session,
        store=store,
        version=version,
        plant_id=promotion_in.plant_id,
        champion=target.champion,
    )
    refusals = _preconditions(version, dict(gathered.evidence.values))
    decision = _decision_record(evaluate(policy, gathered.evidence), refusals)
    evidence_digest = gathered.sha256
    if not decision["passed"]:
        status = PromotionStatus.REFUSED
    elif policy.approvals.required <= 0:
        status = PromotionStatus.APPROVED
    else:
        status = PromotionStatus.PENDING_APPROVAL
    promotion = _new_promotion(
        version=version,
        plant_id=promotion_in.plant_id,
        alias=promotion_in.alias.value,
        policy_ref=ref,
        status=status,
        reason=promotion_in.reason,
        actor=actor,
        user_id=principal.user_id or None,  # 0: the system identity, not a user row
        evidence=gathered.frozen(),
        evidence_digest=evidence_digest,
        decision=decision,
        approvals_required=policy.approvals.required,
        approver_roles=policy.approvals.roles,
    )
    session.add(promotion)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request for the same target won the race
        session.rollback()
        raise Conflict(
            f"version {version.id} to {promotion_in.alias.value} at {promotion_in.plant_id} "
            "already has a pending promotion.",
            diagnostic=str(exc.orig),
        ) from exc
    set_committed_value(promotion, "signatures", [])  # new: none yet, no query to learn it
    webhooks_service.enqueue(
        session=session,
        event=WebhookEvent.PROMOTION_REQUESTED,
        data={
            "promotion_id": promotion.id,
            "version_id": version.id,
            "plant_id": promotion.plant_id,
            "alias": promotion.alias,
            "policy": ref,
            "requested_by": actor,
        },
    )
    trail = [
        audit_service.entry(
            actor=actor,
            action="promotion.request",
            subject=_subject(promotion),
            after={
                "version_id": version.id,
                "plant_id": promotion.plant_id,
                "alias": promotion.alias,
                "policy": ref,
                "evidence_sha256": evidence_digest,
                "binding_sha256": promotion.binding_sha256,
            },
            reason=promotion_in.reason or None,
        )
    ]
    if status is PromotionStatus.REFUSED:
        trail.append(_decide(promotion, status, actor, decision["summary"], before="requested"))
        audit_service.append_batch(session=session, entries=trail)
        service.set_lifecycle(
            session=session,
            plant_id=promotion.plant_id,
            version_id=version.id,
            state=LifecycleState.REFUSED,
            promotion_id=promotion.id,
            actor=actor,
        )
    elif status is PromotionStatus.APPROVED:
        reason = f"approved without signatures: policy {ref} requires none"
        trail.append(
            _decide(promotion, status, actor, reason, ("auto_approved",), before="requested")
        )
        audit_service.append_batch(session=session, entries=trail)
        _apply(session, promotion, version, actor, flags=("auto_approved",))
    else:
        audit_service.append_batch(session=session, entries=trail)
        service.set_lifecycle(
            session=session,
            plant_id=promotion.plant_id,
            version_id=version.id,
            state=LifecycleState.VALIDATED,
            promotion_id=promotion.id,
            actor=actor,
        )
    commit_or_conflict(session, detail="the promotion conflicted with a concurrent change; retry")
    return Promoted(promotion, version)


def _decide(
    promotion: Promotion,
    status: PromotionStatus,
    actor: str,
    why: str,
    flags: tuple[str, ...] = (),
    *,
    before: str | None = None,
) -> dict[str, Any]:
    """Decide the request; return its ``promotion.decide`` audit entry (for the batch)."""
    before = before or promotion.status
    promotion.status = status.value
    if promotion.decided_at is None:
        promotion.decided_at = utcnow()
    _announce_decision(promotion, status, why)
    return audit_service.entry(
        actor=actor,
        action="promotion.decide",
        subject=_subject(promotion),
        before={"status": before},
        after={"status": status.value, "binding_sha256": promotion.binding_sha256},
        reason=why,
        flags=flags,
    )


def _apply(
    session: Session,
    promotion: Promotion,
    version: ModelVersion,
    actor: str,
    *,
    flags: tuple[str, ...] = (),
) -> None:
    """Point the alias at the version and move the lifecycle states (flush only)."""
    alias = registry_service.find_alias(
        session=session,
        plant_id=promotion.plant_id,
        model_id=version.model_id,
        alias=_alias(promotion),
    )
    displaced = None if alias is None else alias.version_id
    returning = (
        service.lifecycle_state(session=session, plant_id=promotion.plant_id, version_id=version.id)
        in _WAS_LIVE
    )
    registry_service.point_alias(
        session=session,
        plant_id=promotion.plant_id,
        model=version.model.name,
        alias=_alias(promotion),
        version_id=version.id,
        actor=actor,
        promotion_id=promotion.id,
        flags=flags,
    )
    if displaced is not None and displaced != version.id:
        service.set_lifecycle(
            session=session,
            plant_id=promotion.plant_id,
            version_id=displaced,
            state=LifecycleState.ROLLED_BACK if returning else LifecycleState.RETIRED,
            promotion_id=promotion.id,
            actor=actor,
        )
    service.set_lifecycle(
        session=session,
        plant_id=promotion.plant_id,
        version_id=version.id,
        state=STATE_OF_ALIAS[_alias(promotion)],
        promotion_id=promotion.id,
        actor=actor,
    )


def _alias(promotion: Promotion) -> AliasName:
    return AliasName(promotion.alias)


def _record_failed_signature(
    session: Session,
    promotion_id: int,
    principal: Principal,
    meaning: SignatureMeaning,
    why: str,
) -> None:
    """Roll back, then record the failed attempt on the audit trail in its own transaction."""
    session.rollback()
    audit_service.append(
        session=session,
        actor=auth_service.actor_name(principal),
        action="signature.failed",
        subject=f"promotion/{promotion_id}",
        after={"user_id": principal.user_id, "meaning": meaning.value},
        reason=why,
        flags=("signature_failed",),
    )
    session.commit()


def sign(
    *,
    session: Session,
    store: ArtifactStore,
    principal: Principal,
    promotion_id: int,
    signature_in: SignatureCreate,
    reject: bool,
) -> Promoted:
    """Approve or reject a pending request with an electronic signature.

    The signer re-enters their signing secret. The requester never signs their own
    request, the signer's role must be one the policy names, and the evidence is gathered
    again: if it no longer hashes to the frozen evidence the request cannot be signed.

    Raises
    ------
    Conflict
        When the request is already decided, the user already signed it, or its evidence or
        artifact changed since it was made (``evidence_changed``).
    Forbidden
        ``four_eyes`` for the requester; ``forbidden`` for a role the policy does not name.
    Unauthenticated
        ``signature_invalid`` for a wrong signing secret (the attempt is recorded).
    InvalidInput
        For a meaning that does not fit (reject is always ``rejection``).
    """
    meaning = _meaning(signature_in.meaning, reject=reject)
    promotion = service.get_promotion_or_raise(
        session=session, promotion_id=promotion_id, lock=True
    )
    if PromotionStatus(promotion.status).final:
        raise Conflict(f"promotion {promotion.id} is already decided ({promotion.status}).")
    if principal.user_id == promotion.requested_by_user_id:
        _record_failed_signature(session, promotion_id, principal, meaning, "four eyes")
        raise Forbidden(
            f"{principal.printed_name or principal.username} requested promotion "
            f"{promotion.id} and cannot also sign it: a second person must (four eyes).",
            code=ErrorCode.FOUR_EYES,
        )
    if principal.role.value not in promotion.approver_roles:
        roles = ", ".join(promotion.approver_roles)
        _record_failed_signature(
            session, promotion_id, principal, meaning, f"role {principal.role.value}"
        )
        raise Forbidden(
            f"policy {promotion.policy_ref} lets only {roles} sign promotions; you are "
            f"{principal.role.value}."
        )
    if any(s.user_id == principal.user_id for s in promotion.signatures):
        raise Conflict(f"{principal.username} already signed promotion {promotion.id}.")
    if not auth_service.verify_signing_secret(
        session=session, user_id=principal.user_id, secret=signature_in.signing_secret
    ):
        _record_failed_signature(session, promotion_id, principal, meaning, "wrong signing secret")
        raise Unauthenticated(
            "the signing secret is wrong; the failed attempt is recorded on the audit trail.",
            code=ErrorCode.SIGNATURE_INVALID,
        )
    version = registry_service.get_version_or_raise(
        session=session, version_id=promotion.version_id
    )
    _check_unchanged(session, store, promotion, version)
    actor = auth_service.actor_name(principal)
    signature = service.add_signature(
        session=session,
        promotion=promotion,
        user_id=principal.user_id,
        username=principal.username,
        printed_name=principal.printed_name,
        role=principal.role.value,
        meaning=meaning,
        comment=signature_in.comment,
    )
    trail = [
        audit_service.entry(
            actor=actor,
            action="signature.create",
            subject=_subject(promotion),
            after={
                "signature_id": signature.id,
                "user_id": signature.user_id,
                "printed_name": signature.printed_name,
                "meaning": signature.meaning,
                "signed_at": signature.signed_at.isoformat(),
                "binding_sha256": signature.binding_sha256,
            },
            reason=signature_in.comment or None,
        )
    ]
    if reject:
        trail.append(_decide(promotion, PromotionStatus.REJECTED, actor, f"rejected by {actor}"))
        audit_service.append_batch(session=session, entries=trail)
        service.set_lifecycle(
            session=session,
            plant_id=promotion.plant_id,
            version_id=promotion.version_id,
            state=LifecycleState.REFUSED,
            promotion_id=promotion.id,
            actor=actor,
        )
    elif service.valid_approvals(promotion, binding=promotion.binding_sha256) >= max(
        promotion.approvals_required, 1
    ):
        why = f"{promotion.approvals_required} approval(s) signed"
        trail.append(_decide(promotion, PromotionStatus.APPROVED, actor, why))
        audit_service.append_batch(session=session, entries=trail)
        service.set_lifecycle(
            session=session,
            plant_id=promotion.plant_id,
            version_id=promotion.version_id,
            state=LifecycleState.APPROVED,
            promotion_id=promotion.id,
            actor=actor,
        )
        _apply(session, promotion, version, actor)
    else:
        audit_service.append_batch(session=session, entries=trail)
    commit_or_conflict(session, detail="the promotion was signed concurrently; retry")
    return Promoted(promotion, version)


def _meaning(requested: SignatureMeaning | None, *, reject: bool) -> SignatureMeaning:
    if reject:
        if requested not in (None, SignatureMeaning.REJECTION):
            raise InvalidInput("a rejection is signed with the meaning 'rejection'.")
        return SignatureMeaning.REJECTION
    if requested == SignatureMeaning.REJECTION:
        raise InvalidInput("use reject, not approve, to sign a rejection.")
    return requested or SignatureMeaning.APPROVAL


def _check_unchanged(
    session: Session, store: ArtifactStore, promotion: Promotion, version: ModelVersion
) -> None:
    if service.current_binding(session=session, promotion=promotion) != promotion.binding_sha256:
        raise Conflict(
            f"promotion {promotion.id}'s record no longer matches its binding (artifact or "
            "evidence changed); request a new promotion.",
            code=ErrorCode.EVIDENCE_CHANGED,
        )
    fresh = evidence_mod.gather(
        session=session, store=store, version=version, plant_id=promotion.plant_id
    )
    if fresh.sha256 != promotion.evidence_sha256:
        changed = sorted(
            key
            for key in set(fresh.evidence.values) | set(promotion.evidence.get("values", {}))
            if fresh.evidence.values.get(key) != promotion.evidence.get("values", {}).get(key)
        )
        raise Conflict(
            f"the evidence of promotion {promotion.id} changed since it was requested "
            f"({', '.join(changed) or 'scope'}); request a new promotion.",
            code=ErrorCode.EVIDENCE_CHANGED,
            errors=[{"path": key} for key in changed],
        )


def _new_promotion(
    *,
    version: ModelVersion,
    plant_id: str,
    alias: str,
    policy_ref: str | None,
    status: PromotionStatus,
    reason: str,
    actor: str,
    user_id: int | None,
    evidence: dict[str, Any],
    evidence_digest: str,
    decision: dict[str, Any] | None = None,
    approvals_required: int = 0,
    approver_roles: Sequence[str] = (),
    break_glass: bool = False,
) -> Promotion:
    """Build a promotion row bound to its version, artifact, policy and evidence.

    The one place the signature binding (:func:`service.binding_sha256`) is computed for a new
    record, so every path (request, break-glass, rollback) binds the same four fields.
    """
    now = utcnow()
    return Promotion(
        version_id=version.id,
        plant_id=plant_id,
        alias=alias,
        policy_ref=policy_ref,
        status=status.value,
        reason=reason,
        requested_by=actor,
        requested_by_user_id=user_id,
        artifact_sha256=version.artifact_digest,
        evidence=evidence,
        evidence_sha256=evidence_digest,
        binding_sha256=service.binding_sha256(
            version_id=version.id,
            artifact_sha256=version.artifact_digest,
            policy_ref=policy_ref,
            evidence=evidence_digest,
        ),
        decision=decision,
        approvals_required=approvals_required,
        approver_roles=list(approver_roles),
        break_glass=break_glass,
        created_at=now,
        decided_at=now if status.final else None,
    )


def break_glass(
    *, session: Session, store: ArtifactStore, principal: Principal, body: BreakGlassCreate
) -> Promoted:
    """Admin override: set the alias now, without gate or signatures, flagged on the trail.

    The evidence is still gathered and frozen, so the record shows what was bypassed.

    Raises
    ------
    NotFound
        When the version or plant does not exist.
    InvalidInput
        When the version belongs to another plant, or its artifact is missing or altered
        (break-glass skips people, never integrity).
    """
    actor = auth_service.actor_name(principal)
    version = registry_service.get_version_or_raise(session=session, version_id=body.version_id)
    registry_service.get_plant_or_raise(session=session, plant_id=body.plant_id)
    _check_target(version, body.plant_id)
    gathered = evidence_mod.gather(
        session=session, store=store, version=version, plant_id=body.plant_id
    )
    refusals = _preconditions(version, dict(gathered.evidence.values))
    if refusals:
        raise InvalidInput("break-glass refused: " + "; ".join(refusals))
    evidence_digest = gathered.sha256
    promotion = _new_promotion(
        version=version,
        plant_id=body.plant_id,
        alias=body.alias.value,
        policy_ref=None,
        status=PromotionStatus.BREAK_GLASS,
        reason=body.reason,
        actor=actor,
        user_id=principal.user_id,
        evidence=gathered.frozen(),
        evidence_digest=evidence_digest,
        break_glass=True,
    )
    session.add(promotion)
    session.flush()
    audit_service.append(
        session=session,
        actor=actor,
        action="break_glass",
        subject=_subject(promotion),
        after={
            "version_id": version.id,
            "plant_id": body.plant_id,
            "alias": body.alias.value,
            "evidence_sha256": evidence_digest,
        },
        reason=body.reason,
        flags=("break_glass",),
    )
    _apply(session, promotion, version, actor, flags=("break_glass",))
    commit_or_conflict(session, detail="the break-glass conflicted with a concurrent change")
    return Promoted(promotion, version)


def rollback_champion(
    *,
    session: Session,
    actor: str,
    user_id: int | None,
    version: ModelVersion,
    plant_id: str,
    reason: str,
) -> Promotion:
    """Point a plant's champion back at a version that was live there before (flush only).

    Used by fleet rollbacks (:mod:`hub.rollouts.flows`): recorded as an approved promotion
    without gate, flagged ``rollback`` on the trail; the caller commits.
    """
    _check_target(version, plant_id)
    empty = Evidence(plant=plant_id, product_line=None, values={})
    digest = evidence_sha256(empty)
    promotion = _new_promotion(
        version=version,
        plant_id=plant_id,
        alias=AliasName.CHAMPION.value,
        policy_ref=None,
        status=PromotionStatus.APPROVED,
        reason=reason,
        actor=actor,
        user_id=user_id,
        evidence={"plant": plant_id, "product_line": None, "values": {}, "sources": {}},
        evidence_digest=digest,
    )
    session.add(promotion)
    session.flush()
    _apply(session, promotion, version, actor, flags=("rollback",))
    return promotion


def _announce_decision(promotion: Promotion, status: PromotionStatus, why: str) -> None:
    """Queue the ``promotion.decided`` webhook in the decision's transaction (fleet hook)."""
    session = object_session(promotion)
    if session is None:  # pragma: no cover - a decided promotion is always in a session
        return
    session.flush()
    webhooks_service.enqueue(
        session=session,
        event=WebhookEvent.PROMOTION_DECIDED,
        data={
            "promotion_id": promotion.id,
            "version_id": promotion.version_id,
            "plant_id": promotion.plant_id,
            "alias": promotion.alias,
            "status": status.value,
            "reason": why,
        },
    )
