"""Wire shapes of the webhook routes, defined once in :mod:`federation.schemas.rollouts`."""

from federation.schemas.rollouts import (
    WebhookCreate,
    WebhookCreated,
    WebhookEvent,
    WebhookPage,
    WebhookPayload,
    WebhookRead,
)

__all__ = [
    "WebhookCreate",
    "WebhookCreated",
    "WebhookEvent",
    "WebhookPage",
    "WebhookPayload",
    "WebhookRead",
]
