"""HTTP routes of governance: translate requests into service and flow calls, nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from federation.errors import PayloadTooLarge
from federation.schemas.governance import (
    BreakGlassCreate,
    LifecycleList,
    PolicyDiff,
    PolicyPage,
    PolicyPublished,
    PolicyRead,
    PromotionCreate,
    PromotionPage,
    PromotionRead,
    PromotionStatus,
    SignatureCreate,
)
from hub.config import API_PREFIX
from hub.deps import (
    ActorDep,
    ArtifactStoreDep,
    IdPath,
    IdQuery,
    PageSizeDep,
    PrincipalDep,
    SessionDep,
)
from hub.governance import flows, service
from hub.governance.permissions import (
    BreakGlass,
    PublishPolicies,
    ReadGovernance,
    ReadLifecycle,
    RequestPromotions,
    SignPromotions,
)
from hub.responses import json_response

router = APIRouter(prefix=API_PREFIX, tags=["governance"])

_POLICY_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


# ---------------------------------------------------------------- policies


@router.post(
    "/policies",
    response_model=PolicyPublished,
    status_code=201,
    dependencies=[PublishPolicies],
    openapi_extra=_POLICY_BODY,
    responses={200: {"model": PolicyPublished, "description": "Identical document existed."}},
)
async def publish_policy(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    content_length: Annotated[int | None, Header()] = None,
) -> Response:
    """Publish a policy document (YAML or JSON); ``id@version`` is immutable once published."""
    if content_length is not None and content_length > service.MAX_POLICY_BYTES:
        raise PayloadTooLarge(f"a policy document is at most {service.MAX_POLICY_BYTES} bytes.")
    body = bytearray()
    async for chunk in request.stream():  # bounded even without a Content-Length
        body += chunk
        if len(body) > service.MAX_POLICY_BYTES:
            raise PayloadTooLarge(f"a policy document is at most {service.MAX_POLICY_BYTES} bytes.")
    row, created = await run_in_threadpool(
        service.publish_policy, session=session, text=bytes(body), actor=actor
    )
    read = service.policy_read(row)
    return json_response(
        PolicyPublished(**read.model_dump(), created=created), status_code=201 if created else 200
    )


@router.get("/policies", response_model=PolicyPage, dependencies=[ReadGovernance])
def list_policies(
    session: SessionDep,
    page_size: PageSizeDep,
    kind: str | None = None,
    policy_id: str | None = None,
    page_token: str | None = None,
) -> PolicyPage:
    """List published policies in publish order, optionally of one kind or one id."""
    rows, token = service.list_policies(
        session=session, kind=kind, policy_id=policy_id, page_size=page_size, page_token=page_token
    )
    return PolicyPage(items=[service.policy_read(r) for r in rows], next_page_token=token)


@router.get("/policies/diff", response_model=PolicyDiff, dependencies=[ReadGovernance])
def diff_policies(
    session: SessionDep,
    a: Annotated[str, Query(max_length=140, description="id@version")],
    b: Annotated[str, Query(max_length=140, description="id@version")],
) -> PolicyDiff:
    """Compare policy ``a`` with policy ``b`` field by field (dotted paths)."""
    return service.diff_policies(session=session, a_ref=a, b_ref=b)


@router.get("/policies/{policy_ref}", response_model=PolicyRead, dependencies=[ReadGovernance])
def get_policy_by_ref(
    session: SessionDep,
    policy_ref: Annotated[str, Path(max_length=140, description="id@version")],
) -> PolicyRead:
    """Return one published policy by its reference, ``id@version`` (as gates name it)."""
    return service.policy_read(service.get_policy_by_ref_or_raise(session=session, ref=policy_ref))


@router.get(
    "/policies/{policy_id}/versions/{policy_version}",
    response_model=PolicyRead,
    dependencies=[ReadGovernance],
)
def get_policy(policy_id: str, policy_version: IdPath, session: SessionDep) -> PolicyRead:
    """Return one published policy, ``policy_id@policy_version``."""
    return service.policy_read(
        service.get_policy_or_raise(session=session, policy_id=policy_id, version=policy_version)
    )


# ---------------------------------------------------------------- promotions


@router.post(
    "/promotions", response_model=PromotionRead, status_code=201, dependencies=[RequestPromotions]
)
def request_promotion(
    promotion_in: PromotionCreate,
    session: SessionDep,
    store: ArtifactStoreDep,
    principal: PrincipalDep,
) -> Response:
    """Evaluate the policy's gate on fresh evidence: ``refused`` with reasons, or pending."""
    promoted = flows.request_promotion(
        session=session, store=store, principal=principal, promotion_in=promotion_in
    )
    read = service.promotion_read(
        session=session, promotion=promoted.promotion, version=promoted.version
    )
    return json_response(read, status_code=201)


@router.post(
    "/promotions/break-glass",
    response_model=PromotionRead,
    status_code=201,
    dependencies=[BreakGlass],
)
def break_glass(
    body: BreakGlassCreate,
    session: SessionDep,
    store: ArtifactStoreDep,
    principal: PrincipalDep,
) -> PromotionRead:
    """Admin override without gate or signatures; needs a reason, flagged on the audit trail."""
    promoted = flows.break_glass(session=session, store=store, principal=principal, body=body)
    return service.promotion_read(
        session=session, promotion=promoted.promotion, version=promoted.version
    )


@router.get("/promotions", response_model=PromotionPage, dependencies=[ReadGovernance])
def list_promotions(
    session: SessionDep,
    page_size: PageSizeDep,
    plant_id: str | None = None,
    status: PromotionStatus | None = None,
    version_id: IdQuery = None,
    page_token: str | None = None,
) -> PromotionPage:
    """Promotion requests in request order, with their decisions and signatures."""
    rows, token = service.list_promotions(
        session=session,
        plant_id=plant_id,
        status=status,
        version_id=version_id,
        page_size=page_size,
        page_token=page_token,
    )
    return PromotionPage(
        items=[service.promotion_read(session=session, promotion=r) for r in rows],
        next_page_token=token,
    )


@router.get(
    "/promotions/{promotion_id}", response_model=PromotionRead, dependencies=[ReadGovernance]
)
def get_promotion(promotion_id: IdPath, session: SessionDep) -> PromotionRead:
    """One promotion request with its frozen evidence, decision and signatures."""
    promotion = service.get_promotion_or_raise(session=session, promotion_id=promotion_id)
    return service.promotion_read(session=session, promotion=promotion)


def _sign(
    promotion_id: IdPath,
    signature_in: SignatureCreate,
    session: SessionDep,
    store: ArtifactStoreDep,
    principal: PrincipalDep,
    *,
    reject: bool,
) -> PromotionRead:
    promoted = flows.sign(
        session=session,
        store=store,
        principal=principal,
        promotion_id=promotion_id,
        signature_in=signature_in,
        reject=reject,
    )
    return service.promotion_read(
        session=session, promotion=promoted.promotion, version=promoted.version
    )


@router.post(
    "/promotions/{promotion_id}/approve",
    response_model=PromotionRead,
    dependencies=[SignPromotions],
)
def approve_promotion(
    promotion_id: IdPath,
    signature_in: SignatureCreate,
    session: SessionDep,
    store: ArtifactStoreDep,
    principal: PrincipalDep,
) -> PromotionRead:
    """Sign an approval (signing secret re-entered); enough approvals apply the promotion."""
    return _sign(promotion_id, signature_in, session, store, principal, reject=False)


@router.post(
    "/promotions/{promotion_id}/reject",
    response_model=PromotionRead,
    dependencies=[SignPromotions],
)
def reject_promotion(
    promotion_id: IdPath,
    signature_in: SignatureCreate,
    session: SessionDep,
    store: ArtifactStoreDep,
    principal: PrincipalDep,
) -> PromotionRead:
    """Sign a rejection (signing secret re-entered); the request is decided."""
    return _sign(promotion_id, signature_in, session, store, principal, reject=True)


@router.get(
    "/plants/{plant_id}/lifecycle", response_model=LifecycleList, dependencies=[ReadLifecycle]
)
def plant_lifecycle(plant_id: str, session: SessionDep) -> LifecycleList:
    """Where each version stands at a plant (candidate ... champion, retired, refused)."""
    return LifecycleList(items=service.list_lifecycle(session=session, plant_id=plant_id))
