"""HTTP routes of federated campaigns."""

from __future__ import annotations

from fastapi import APIRouter

from federation.schemas.campaigns import CampaignCreate, CampaignPage, CampaignRead, CampaignStatus
from hub.campaigns import service
from hub.campaigns.permissions import ReadCampaigns, RunCampaigns
from hub.config import API_PREFIX
from hub.deps import ActorDep, IdempotencyDep, PageSizeDep, SessionDep

router = APIRouter(prefix=API_PREFIX, tags=["campaigns"])


@router.post(
    "/campaigns", response_model=CampaignRead, status_code=201, dependencies=[RunCampaigns]
)
def create_campaign(
    campaign_in: CampaignCreate, session: SessionDep, actor: ActorDep, idem: IdempotencyDep
) -> CampaignRead:
    """Queue a federated fine-tuning campaign; the hub's worker runs it on the SuperLink."""
    campaign = service.create_campaign(
        session=session, campaign_in=campaign_in, actor=actor, idem=idem
    )
    return service.to_read(session=session, campaign=campaign)


@router.get("/campaigns", response_model=CampaignPage, dependencies=[ReadCampaigns])
def list_campaigns(
    session: SessionDep,
    page_size: PageSizeDep,
    status: CampaignStatus | None = None,
    page_token: str | None = None,
) -> CampaignPage:
    """List campaigns (without their round records), optionally of one status."""
    rows, token = service.list_campaigns(
        session=session, status=status, page_size=page_size, page_token=page_token
    )
    items = [service.to_read(session=session, campaign=c, with_rounds=False) for c in rows]
    return CampaignPage(items=items, next_page_token=token)


@router.get("/campaigns/{campaign_id}", response_model=CampaignRead, dependencies=[ReadCampaigns])
def get_campaign(campaign_id: int, session: SessionDep) -> CampaignRead:
    """One campaign with its per-round metrics, rejections, drop-outs and results."""
    campaign = service.get_campaign_or_raise(session=session, campaign_id=campaign_id)
    return service.to_read(session=session, campaign=campaign)


@router.post(
    "/campaigns/{campaign_id}/cancel", response_model=CampaignRead, dependencies=[RunCampaigns]
)
def cancel_campaign(campaign_id: int, session: SessionDep, actor: ActorDep) -> CampaignRead:
    """Cancel a queued or running campaign (its Flower run is stopped)."""
    campaign = service.cancel_campaign(session=session, campaign_id=campaign_id, actor=actor)
    return service.to_read(session=session, campaign=campaign)
