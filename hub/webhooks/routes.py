"""HTTP routes of webhook subscriptions (admin only); translation only."""

from __future__ import annotations

from fastapi import APIRouter, Response

from federation.schemas.rollouts import WebhookCreate, WebhookCreated, WebhookPage
from hub.config import API_PREFIX
from hub.deps import ActorDep, IdPath, PageSizeDep, SessionDep
from hub.webhooks import service
from hub.webhooks.permissions import ManageWebhooks

router = APIRouter(prefix=API_PREFIX, tags=["webhooks"])


@router.post(
    "/webhooks", response_model=WebhookCreated, status_code=201, dependencies=[ManageWebhooks]
)
def create_webhook(body: WebhookCreate, session: SessionDep, actor: ActorDep) -> WebhookCreated:
    """Subscribe an http(s) URL to event types; the answer shows the signing secret once."""
    row = service.create_subscription(session=session, webhook_in=body, actor=actor)
    read = service.subscription_read(session=session, row=row)
    return WebhookCreated(**read.model_dump(), secret=row.secret)


@router.get("/webhooks", response_model=WebhookPage, dependencies=[ManageWebhooks])
def list_webhooks(
    session: SessionDep, page_size: PageSizeDep, page_token: str | None = None
) -> WebhookPage:
    """List subscriptions with their delivery counts (never their secrets)."""
    rows, token = service.list_subscriptions(
        session=session, page_size=page_size, page_token=page_token
    )
    return WebhookPage(
        items=[service.subscription_read(session=session, row=r) for r in rows],
        next_page_token=token,
    )


@router.delete("/webhooks/{webhook_id}", status_code=204, dependencies=[ManageWebhooks])
def delete_webhook(webhook_id: IdPath, session: SessionDep, actor: ActorDep) -> Response:
    """Remove a subscription and its undelivered events."""
    service.delete_subscription(session=session, webhook_id=webhook_id, actor=actor)
    return Response(status_code=204)
