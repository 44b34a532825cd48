"""HTTP routes of the audit trail: read it in pages; nothing writes it over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hub.audit import service
from hub.audit.permissions import ReadAudit
from hub.audit.schemas import AuditPage
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
