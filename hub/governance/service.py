"""Governance records: the policy store, promotion requests, signatures and lifecycle states.

Use cases that span domains (request, approve, reject, break-glass) are in
:mod:`hub.governance.flows`; this module owns the rows. Publishing a policy is a use case
of its own and commits; the other writers only flush, inside the flow's transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from federation.errors import Conflict, InvalidInput, NotFound
from federation.schemas.governance import (
    APPROVING_MEANINGS,
    DecisionRead,
    LifecycleRead,
    LifecycleState,
    PolicyDiff,
    PolicyFieldChange,
    PolicyRead,
    PromotionRead,
    PromotionStatus,
    SignatureMeaning,
    SignatureRead,
)
from federation.schemas.registry import AliasName
from hub.audit import service as audit_service
from hub.db import commit_or_conflict, utcnow
from hub.governance.models import Promotion, Signature, StoredPolicy, VersionLifecycle
from hub.pagination import decode_token, scalar_page
from hub.registry import service as registry_service
from hub.registry.models import ModelVersion
from policies import (
    Evidence,
    PolicyDocument,
    PolicyValidationError,
    document_sha256,
    evidence_sha256,
    parse_policy,
    parse_ref,
    sha256_of,
)

#: Largest policy document accepted (YAML or JSON bytes).
MAX_POLICY_BYTES = 256 * 1024
_DOCUMENT: TypeAdapter[PolicyDocument] = TypeAdapter(PolicyDocument)


# ---------------------------------------------------------------- policies


def policy_read(row: StoredPolicy) -> PolicyRead:
    """Convert a stored policy to its wire entity."""
    return PolicyRead(
        policy_id=row.policy_id,
        version=row.version,
        ref=row.ref,
        kind=row.kind,
        title=row.title,
        document=dict(row.document),
        sha256=row.sha256,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def publish_policy(*, session: Session, text: bytes | str, actor: str) -> tuple[StoredPolicy, bool]:
    """Validate and store a policy document; the same ``id@version`` never changes.

    Parameters
    ----------
    session
        Session of this use case (committed here).
    text
        The document, YAML (JSON is YAML too).
    actor
        Who publishes it.

    Returns
    -------
    tuple[StoredPolicy, bool]
        The stored row and whether it was created now (False: identical document existed).

    Raises
    ------
    InvalidInput
        When the document does not validate; ``errors`` lists each error with its path.
    Conflict
        When ``id@version`` was published before with other content.
    """
    if len(text) > MAX_POLICY_BYTES:
        raise InvalidInput(f"a policy document is at most {MAX_POLICY_BYTES} bytes.")
    try:
        document = parse_policy(text)
    except PolicyValidationError as exc:
        raise InvalidInput(
            f"the policy document is not valid: {len(exc.errors)} error(s).", errors=exc.errors
        ) from exc
    digest = document_sha256(document)
    existing = _find_policy(session, document.id, document.version)
    if existing is not None:
        if existing.sha256 == digest:
            return existing, False
        raise Conflict(
            f"policy {document.ref} is already published with other content (sha256 "
            f"{existing.sha256[:12]}...); publish it as version {document.version + 1}.",
        )
    row = StoredPolicy(
        policy_id=document.id,
        version=document.version,
        kind=str(document.kind),
        title=document.title,
        document=document.model_dump(mode="json"),
        sha256=digest,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    audit_service.append(
        session=session,
        actor=actor,
        action="policy.publish",
        subject=f"policy/{document.ref}",
        after={"ref": document.ref, "kind": str(document.kind), "sha256": digest},
    )
    commit_or_conflict(session, detail=f"policy {document.ref} was published concurrently")
    return row, True


def _find_policy(session: Session, policy_id: str, version: int) -> StoredPolicy | None:
    return session.scalars(
        select(StoredPolicy).where(
            StoredPolicy.policy_id == policy_id, StoredPolicy.version == version
        )
    ).first()


def get_policy_or_raise(*, session: Session, policy_id: str, version: int) -> StoredPolicy:
    """Return a published policy.

    Raises
    ------
    NotFound
        When ``policy_id@version`` was never published.
    """
    row = _find_policy(session, policy_id, version)
    if row is None:
        raise NotFound(f"policy {policy_id}@{version} is not published; list policies.")
    return row


def _parse_ref_or_raise(ref: str) -> tuple[str, int]:
    """Split ``id@version``; anything else is the caller's bad input."""
    try:
        return parse_ref(ref)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"'{ref}' is not a policy reference of the form id@version.") from exc


def get_policy_by_ref_or_raise(*, session: Session, ref: str) -> StoredPolicy:
    """Return the published policy named by ``id@version``.

    Raises
    ------
    InvalidInput
        When ``ref`` is not of the form ``id@version``.
    NotFound
        When it was never published.
    """
    policy_id, version = _parse_ref_or_raise(ref)
    return get_policy_or_raise(session=session, policy_id=policy_id, version=version)


_PARSED: dict[tuple[str, str], PolicyDocument] = {}


def document_of(row: StoredPolicy) -> PolicyDocument:
    """Rebuild the typed document of a stored policy (cached: published documents are immutable).

    The cache key includes the document's sha256, so a row edited behind the hub's back is
    parsed again rather than served stale.
    """
    key = (row.ref, row.sha256)
    document = _PARSED.get(key)
    if document is None:
        document = _DOCUMENT.validate_python(row.document)
        if len(_PARSED) > 1024:
            _PARSED.clear()
        _PARSED[key] = document
    return document


def list_policies(
    *,
    session: Session,
    kind: str | None,
    policy_id: str | None,
    page_size: int,
    page_token: str | None,
) -> tuple[list[StoredPolicy], str | None]:
    """One page of published policies in publish order."""
    filters = {"kind": kind, "policy_id": policy_id}
    after = decode_token(page_token, filters, int)
    stmt = select(StoredPolicy)
    if kind:
        stmt = stmt.where(StoredPolicy.kind == kind)
    if policy_id:
        stmt = stmt.where(StoredPolicy.policy_id == policy_id)
    return scalar_page(
        session=session,
        stmt=stmt,
        key=StoredPolicy.id,
        after=after,
        page_size=page_size,
        filters=filters,
    )


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key in value:
            _flatten(f"{prefix}.{key}" if prefix else str(key), value[key], out)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            _flatten(f"{prefix}.{index}" if prefix else str(index), item, out)
    else:
        out[prefix] = value


def diff_policies(*, session: Session, a_ref: str, b_ref: str) -> PolicyDiff:
    """Compare two published policies field by field (dotted paths, list items by index).

    Raises
    ------
    InvalidInput
        When a reference is malformed.
    NotFound
        When either policy is not published.
    """
    a = get_policy_by_ref_or_raise(session=session, ref=a_ref)
    b = get_policy_by_ref_or_raise(session=session, ref=b_ref)
    flat_a: dict[str, Any] = {}
    flat_b: dict[str, Any] = {}
    _flatten("", a.document, flat_a)
    _flatten("", b.document, flat_b)
    changes = [
        PolicyFieldChange(field=key, a=flat_a.get(key), b=flat_b.get(key))
        for key in sorted(set(flat_a) | set(flat_b))
        if flat_a.get(key) != flat_b.get(key)
    ]
    return PolicyDiff(a=a.ref, b=b.ref, changes=changes)


# ---------------------------------------------------------------- bindings


def binding_sha256(
    *, version_id: int, artifact_sha256: str | None, policy_ref: str | None, evidence: str
) -> str:
    """Return the hash a signature is bound to (version id, artifact, policy, evidence)."""
    return sha256_of(
        {
            "version_id": version_id,
            "artifact_sha256": artifact_sha256,
            "policy": policy_ref,
            "evidence_sha256": evidence,
        }
    )


def current_binding(
    *, session: Session, promotion: Promotion, version: ModelVersion | None = None
) -> str:
    """Recompute a request's binding from what is stored now (version row, frozen evidence).

    A signature stays valid only while this equals the binding it was made over: an edited
    evidence record, a changed artifact digest or another policy reference breaks it.
    """
    if version is None or version.id != promotion.version_id:
        version = registry_service.get_version(session=session, version_id=promotion.version_id)
    frozen = promotion.evidence or {}
    evidence = Evidence(
        plant=frozen.get("plant"),
        product_line=frozen.get("product_line"),
        values=dict(frozen.get("values") or {}),
    )
    return binding_sha256(
        version_id=promotion.version_id,
        artifact_sha256=None if version is None else version.artifact_digest,
        policy_ref=promotion.policy_ref,
        evidence=evidence_sha256(evidence),
    )


# ---------------------------------------------------------------- promotions


def get_promotion_or_raise(*, session: Session, promotion_id: int, lock: bool = False) -> Promotion:
    """Return a promotion request (``lock``: held until the transaction ends).

    PostgreSQL locks the row (``FOR UPDATE``); SQLite takes its database write lock.

    Raises
    ------
    NotFound
        When it does not exist.
    """
    if lock and session.get_bind().dialect.name == "sqlite":
        # Take SQLite's write lock before reading: a reader that writes later cannot wait
        # for a concurrent writer (its snapshot is stale), it fails with "database is locked".
        # So the read transaction the token lookup opened ends first (it wrote nothing).
        if not (session.new or session.dirty or session.deleted):
            session.rollback()
        session.execute(
            update(Promotion).where(Promotion.id == promotion_id).values(id=Promotion.id)
        )
    row = session.get(Promotion, promotion_id, with_for_update=lock or None)
    if row is None:
        raise NotFound(f"promotion {promotion_id} does not exist; list promotions.")
    return row


def gate_and_pending(
    *, session: Session, ref: str, version_id: int, plant_id: str, alias: AliasName
) -> tuple[StoredPolicy, int | None]:
    """Return the policy named by ``ref`` and any pending request's id, in one query.

    The pending request is one for the same version, plant and alias (None: there is none).

    Raises
    ------
    InvalidInput
        When ``ref`` is not of the form ``id@version``.
    NotFound
        When it was never published.
    """
    policy_id, version = _parse_ref_or_raise(ref)
    pending = (
        select(Promotion.id)
        .where(
            Promotion.version_id == version_id,
            Promotion.plant_id == plant_id,
            Promotion.alias == alias.value,
            Promotion.status == PromotionStatus.PENDING_APPROVAL.value,
        )
        .limit(1)
        .scalar_subquery()
    )
    row = session.execute(
        select(StoredPolicy, pending).where(
            StoredPolicy.policy_id == policy_id, StoredPolicy.version == version
        )
    ).first()
    if row is None:
        return get_policy_or_raise(session=session, policy_id=policy_id, version=version), None
    return row[0], row[1]


def pending_promotion(
    *, session: Session, version_id: int, plant_id: str, alias: AliasName
) -> Promotion | None:
    """Return the pending request for the same version, plant and alias, if any."""
    return session.scalars(
        select(Promotion).where(
            Promotion.version_id == version_id,
            Promotion.plant_id == plant_id,
            Promotion.alias == alias.value,
            Promotion.status == PromotionStatus.PENDING_APPROVAL.value,
        )
    ).first()


def list_promotions(
    *,
    session: Session,
    plant_id: str | None,
    status: PromotionStatus | None,
    version_id: int | None,
    page_size: int,
    page_token: str | None,
) -> tuple[list[Promotion], str | None]:
    """One page of promotion requests in request order."""
    filters = {
        "plant_id": plant_id,
        "status": None if status is None else status.value,
        "version_id": version_id,
    }
    after = decode_token(page_token, filters, int)
    stmt = select(Promotion)
    if plant_id:
        stmt = stmt.where(Promotion.plant_id == plant_id)
    if status is not None:
        stmt = stmt.where(Promotion.status == status.value)
    if version_id is not None:
        stmt = stmt.where(Promotion.version_id == version_id)
    return scalar_page(
        session=session,
        stmt=stmt,
        key=Promotion.id,
        after=after,
        page_size=page_size,
        filters=filters,
    )


def add_signature(
    *,
    session: Session,
    promotion: Promotion,
    user_id: int,
    username: str,
    printed_name: str,
    role: str,
    meaning: SignatureMeaning,
    comment: str,
) -> Signature:
    """Insert a signature over the request's binding (flush only; never updated or deleted)."""
    row = Signature(
        promotion_id=promotion.id,
        user_id=user_id,
        username=username,
        printed_name=printed_name,
        role=role,
        meaning=meaning.value,
        signed_at=utcnow(),
        comment=comment,
        binding_sha256=promotion.binding_sha256,
    )
    session.add(row)
    session.flush()
    session.refresh(promotion, ["signatures"])
    return row


def signature_read(row: Signature, *, binding: str) -> SignatureRead:
    """Convert a signature, checked against the record's current ``binding``."""
    return SignatureRead(
        id=row.id,
        promotion_id=row.promotion_id,
        user_id=row.user_id,
        username=row.username,
        printed_name=row.printed_name,
        role=row.role,
        meaning=SignatureMeaning(row.meaning),
        signed_at=row.signed_at,
        comment=row.comment,
        binding_sha256=row.binding_sha256,
        valid=row.binding_sha256 == binding,
    )


def valid_approvals(promotion: Promotion, *, binding: str) -> int:
    """How many distinct users signed an approving meaning over the current binding."""
    return len(
        {
            s.user_id
            for s in promotion.signatures
            if s.binding_sha256 == binding and SignatureMeaning(s.meaning) in APPROVING_MEANINGS
        }
    )


def promotion_read(
    *, session: Session, promotion: Promotion, version: ModelVersion | None = None
) -> PromotionRead:
    """Convert a request with its evidence, decision and signatures (each checked)."""
    if version is None or version.id != promotion.version_id:
        version = registry_service.get_version_or_raise(
            session=session, version_id=promotion.version_id
        )
    binding = current_binding(session=session, promotion=promotion, version=version)
    valid = binding == promotion.binding_sha256
    return PromotionRead(
        id=promotion.id,
        version_id=promotion.version_id,
        model=version.model.name,
        version=version.version,
        plant_id=promotion.plant_id,
        alias=AliasName(promotion.alias),
        policy_ref=promotion.policy_ref,
        status=PromotionStatus(promotion.status),
        reason=promotion.reason,
        requested_by=promotion.requested_by,
        requested_by_user_id=promotion.requested_by_user_id,
        artifact_sha256=promotion.artifact_sha256,
        evidence=dict(promotion.evidence),
        evidence_sha256=promotion.evidence_sha256,
        binding_sha256=promotion.binding_sha256,
        decision=None if promotion.decision is None else DecisionRead(**promotion.decision),
        approvals_required=promotion.approvals_required,
        approver_roles=list(promotion.approver_roles),
        approvals=valid_approvals(promotion, binding=binding) if valid else 0,
        signatures=[
            signature_read(s, binding=binding if valid else "") for s in promotion.signatures
        ],
        break_glass=promotion.break_glass,
        created_at=promotion.created_at,
        decided_at=promotion.decided_at,
    )


# ---------------------------------------------------------------- lifecycle


def lifecycle_state(*, session: Session, plant_id: str, version_id: int) -> LifecycleState:
    """Where a version stands at a plant (``candidate`` when nothing was recorded)."""
    row = session.get(VersionLifecycle, (plant_id, version_id))
    return LifecycleState.CANDIDATE if row is None else LifecycleState(row.state)


def set_lifecycle(
    *,
    session: Session,
    plant_id: str,
    version_id: int,
    state: LifecycleState,
    promotion_id: int | None,
    actor: str,
) -> None:
    """Record a version's state at a plant (flush only).

    One upsert, unless the row is already in the session (then it is updated in place, so
    the loaded object stays current).
    """
    key = session.identity_key(VersionLifecycle, (plant_id, version_id))
    row = session.identity_map.get(key)
    if row is not None:
        assert isinstance(row, VersionLifecycle)
        row.state = state.value
        row.promotion_id = promotion_id
        row.updated_at = utcnow()
        row.updated_by = actor
        session.flush()
        return
    session.flush()  # the promotion the state names goes first
    values = {
        "plant_id": plant_id,
        "version_id": version_id,
        "state": state.value,
        "promotion_id": promotion_id,
        "updated_at": utcnow(),
        "updated_by": actor,
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(VersionLifecycle).values(values)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["plant_id", "version_id"],
            set_={
                k: stmt.excluded[k] for k in ("state", "promotion_id", "updated_at", "updated_by")
            },
        )
    )


def list_lifecycle(*, session: Session, plant_id: str) -> list[LifecycleRead]:
    """Every version with a recorded state at a plant, by version id."""
    registry_service.get_plant_or_raise(session=session, plant_id=plant_id)
    rows = session.scalars(
        select(VersionLifecycle)
        .where(VersionLifecycle.plant_id == plant_id)
        .order_by(VersionLifecycle.version_id)
    )
    out = []
    for row in rows:
        version = registry_service.get_version_or_raise(session=session, version_id=row.version_id)
        out.append(
            LifecycleRead(
                plant_id=row.plant_id,
                version_id=row.version_id,
                model=version.model.name,
                state=LifecycleState(row.state),
                promotion_id=row.promotion_id,
                updated_at=row.updated_at,
                updated_by=row.updated_by,
            )
        )
    return out


@dataclass(frozen=True)
class AdmittedChampion:
    """How a champion was admitted: the decision's summary and when it was decided."""

    summary: str
    validated_at: dt.datetime


def lifecycle_rows(
    *, session: Session, plant_ids: list[str] | None
) -> list[tuple[str, int, int, LifecycleState, dt.datetime]]:
    """``(plant, version id, model id, state, updated_at)`` of every recorded state, one query."""
    stmt = select(
        VersionLifecycle.plant_id,
        VersionLifecycle.version_id,
        ModelVersion.model_id,
        VersionLifecycle.state,
        VersionLifecycle.updated_at,
    ).join(ModelVersion, ModelVersion.id == VersionLifecycle.version_id)
    if plant_ids is not None:
        stmt = stmt.where(VersionLifecycle.plant_id.in_(plant_ids))
    return [
        (str(p), int(v), int(m), LifecycleState(s), t) for p, v, m, s, t in session.execute(stmt)
    ]


def admitted_champions(
    *, session: Session, plant_ids: list[str] | None
) -> dict[tuple[str, int], AdmittedChampion]:
    """Return the newest approved (or break-glass) champion promotion per plant x version.

    Plain rows, not promotions: the inventory shows when, how and with what summary a
    champion was admitted, and loading every promotion's evidence and signatures for that
    was most of its time.
    """
    newest = select(func.max(Promotion.id)).where(
        Promotion.alias == AliasName.CHAMPION.value,
        Promotion.status.in_([PromotionStatus.APPROVED.value, PromotionStatus.BREAK_GLASS.value]),
    )
    if plant_ids is not None:
        newest = newest.where(Promotion.plant_id.in_(plant_ids))
    newest = newest.group_by(Promotion.plant_id, Promotion.version_id)
    stmt = select(
        Promotion.plant_id, Promotion.version_id, Promotion.decision["summary"].as_string(),
        Promotion.break_glass, Promotion.reason, Promotion.created_at, Promotion.decided_at,
    ).where(Promotion.id.in_(newest.scalar_subquery()))  # fmt: skip
    out: dict[tuple[str, int], AdmittedChampion] = {}
    for plant, version_id, summary, glass, reason, created, decided in session.execute(stmt):
        if summary is None:
            summary = "break-glass" if glass else (reason or "approved")
        out[(str(plant), int(version_id))] = AdmittedChampion(
            summary=str(summary), validated_at=decided or created
        )
    return out

