"""HTTP routes of webhook subscriptions (admin only); translation only."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from federation.schemas.rollouts import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPage,
    WebhookDeliveryRead,
    WebhookPage,
    WebhookRotate,
)
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


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=WebhookDeliveryPage,
    dependencies=[ManageWebhooks],
)
def list_deliveries(
    webhook_id: IdPath,
    session: SessionDep,
    page_size: PageSizeDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    page_token: str | None = None,
) -> WebhookDeliveryPage:
    """List a subscription's deliveries, each with every attempt (status, latency)."""
    rows, token = service.page_deliveries(
        session=session,
        webhook_id=webhook_id,
        status=status,
        page_size=page_size,
        page_token=page_token,
    )
    return WebhookDeliveryPage(
        items=service.deliveries_read(session=session, rows=rows), next_page_token=token
    )


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=WebhookDeliveryRead,
    dependencies=[ManageWebhooks],
)
def redeliver(
    webhook_id: IdPath, delivery_id: IdPath, session: SessionDep, actor: ActorDep
) -> WebhookDeliveryRead:
    """Send a delivery again (same webhook-id, fresh attempt budget)."""
    row = service.redeliver(
        session=session, webhook_id=webhook_id, delivery_id=delivery_id, actor=actor
    )
    return service.deliveries_read(session=session, rows=[row])[0]


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response_model=WebhookCreated,
    dependencies=[ManageWebhooks],
)
def rotate_secret(
    webhook_id: IdPath, session: SessionDep, actor: ActorDep, body: WebhookRotate | None = None
) -> WebhookCreated:
    """Give the subscription a new secret (shown once); the old one signs during the grace."""
    grace = (body or WebhookRotate()).grace_seconds
    row = service.rotate_secret(session=session, webhook_id=webhook_id, grace_s=grace, actor=actor)
    read = service.subscription_read(session=session, row=row)
    return WebhookCreated(**read.model_dump(), secret=row.secret)
