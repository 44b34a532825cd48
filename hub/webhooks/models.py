"""SQLAlchemy rows of webhooks: subscriptions and the durable delivery outbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, CreatedMixin, utcnow


class WebhookSubscription(CreatedMixin, Base):
    """An http(s) endpoint subscribed to event types; ``secret`` signs every delivery."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(String(500), default="")
    #: ``whsec_<base64>``: kept so the hub can sign (HMAC needs the key itself).
    secret: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: The secret before the last rotation: deliveries carry both signatures until it expires.
    previous_secret: Mapped[str | None] = mapped_column(String(200), default=None)
    previous_secret_expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class WebhookDelivery(Base):
    """One event for one subscription: the outbox row the sender drains, with retries."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The ``webhook-id`` header: the same on every retry, unique per delivery.
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    last_latency_ms: Mapped[float | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class WebhookAttempt(Base):
    """One attempt of one delivery: the delivery log (status, latency, error)."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str] = mapped_column(String(500), default="")
    latency_ms: Mapped[float] = mapped_column(default=0.0)
