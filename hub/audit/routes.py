"""HTTP routes of the audit trail: read it in pages, verify it; nothing writes it over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hub.audit import service
from hub.audit.permissions import ReadAudit
from hub.audit.schemas import AuditPage, AuditVerification
from hub.config import API_PREFIX
from hub.deps import PageSizeDep, SessionDep

router = APIRouter(prefix=API_PREFIX, tags=["audit"])
Text = Annotated[str | None, Query(max_length=300)]


@router.get("/audit", response_model=AuditPage, dependencies=[ReadAudit])
def list_audit(
    session: SessionDep,
    page_size: PageSizeDep,
    action: Annotated[str | None, Query(max_length=64)] = None,
    subject: Text = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[str | None, Query(max_length=40, description="ISO 8601, inclusive")] = None,
    until: Annotated[str | None, Query(max_length=40, description="ISO 8601, exclusive")] = None,
    page_token: Annotated[str | None, Query(max_length=500)] = None,
) -> AuditPage:
    """Page through the chain in order, filtered by action, subject, actor and time."""
    filters = service.AuditFilters(action, subject, actor, since, until)
    items, token = service.list_entries(
        session=session, filters=filters, page_size=page_size, page_token=page_token
    )
    return AuditPage(items=items, next_page_token=token)


@router.get("/audit/verify", response_model=AuditVerification, dependencies=[ReadAudit])
def verify_audit(
    session: SessionDep,
    expect_head: Annotated[
        str | None,
        Query(
            min_length=64,
            max_length=64,
            pattern="^[0-9a-f]{64}$",
            description="A head hash recorded earlier; it must still be in the chain",
        ),
    ] = None,
) -> AuditVerification:
    """Recompute the whole chain; name the first entry edited, deleted, inserted or reordered.

    ``ok`` is false when the chain is broken (the response is still 200: the check ran).
    """
    result = service.verify(session=session, expect_head=expect_head)
    return AuditVerification(**result.as_dict(), unsealed=service.unsealed(session=session))
