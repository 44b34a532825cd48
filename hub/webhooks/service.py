"""Webhook subscriptions and the delivery outbox: enqueue in the caller's transaction, sign, retry.

Events are queued by :func:`enqueue` inside the transaction of the change they announce, so
a delivery exists exactly when the change committed. The sender
(:mod:`hub.webhooks.worker`) drains due rows outside any request, so a receiver that hangs
or fails never slows the hub.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from federation.errors import InvalidInput, NotFound
from federation.schemas.rollouts import WebhookCreate, WebhookEvent, WebhookRead
from hub.audit import service as audit_service
from hub.db import utcnow
from hub.pagination import decode_token, scalar_page
from hub.webhooks.models import WebhookDelivery, WebhookSubscription

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
#: Largest number of subscriptions (every event fans out to each).
MAX_SUBSCRIPTIONS = 200


def begin_write(session: Session) -> None:
    """On SQLite, take the write lock before reading (see ``hub.rollouts.service``)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    if session.in_transaction() and not (session.new or session.dirty or session.deleted):
        session.rollback()
    session.execute(text("UPDATE webhook_deliveries SET id = id WHERE 0 = 1"))


def check_url(url: str) -> str:
    """Refuse URLs that are not plain http(s) (credentials, other schemes, no host).

    Raises
    ------
    InvalidInput
        With the reason.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"webhook URL scheme '{parts.scheme}' is not http or https.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInput("webhook URLs may not carry credentials; the signature authenticates.")
    if not parts.hostname:
        raise InvalidInput("webhook URL has no host.")
    if parts.fragment:
        raise InvalidInput("webhook URL may not have a fragment.")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise InvalidInput(f"webhook URL port is not valid: {exc}") from exc
    return url


def new_secret() -> str:
    """Return a fresh Standard Webhooks secret (``whsec_`` + base64 of 32 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_subscription(
    *, session: Session, webhook_in: WebhookCreate, actor: str
) -> WebhookSubscription:
    """Store a subscription with a generated secret (commits).

    Raises
    ------
    InvalidInput
        When the URL fails the rules or there are too many subscriptions.
    """
    check_url(webhook_in.url)
    begin_write(session)
    count = session.scalar(select(func.count()).select_from(WebhookSubscription)) or 0
    if count >= MAX_SUBSCRIPTIONS:
        raise InvalidInput(f"at most {MAX_SUBSCRIPTIONS} webhook subscriptions.")
    row = WebhookSubscription(
        url=webhook_in.url,
        events=sorted({e.value for e in webhook_in.events}),
        description=webhook_in.description,
        secret=new_secret(),
        active=True,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    audit_service.append(
        session=session,
        actor=actor,
        action="webhook.create",
        subject=f"webhook:{row.id}",
        after={"url": row.url, "events": row.events},
    )
    session.commit()
    return row


def get_subscription_or_raise(*, session: Session, webhook_id: int) -> WebhookSubscription:
    """Return a subscription.

    Raises
    ------
    NotFound
        When it does not exist.
    """
    row = session.get(WebhookSubscription, webhook_id)
    if row is None:
        raise NotFound(f"webhook {webhook_id} does not exist; list webhooks.")
    return row


def delete_subscription(*, session: Session, webhook_id: int, actor: str) -> None:
    """Remove a subscription and its undelivered rows (commits)."""
    begin_write(session)
    row = get_subscription_or_raise(session=session, webhook_id=webhook_id)
    for delivery in session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.subscription_id == webhook_id)
    ):
        session.delete(delivery)
    session.delete(row)
    session.flush()
    audit_service.append(
        session=session,
        actor=actor,
        action="webhook.delete",
        subject=f"webhook:{webhook_id}",
        before={"url": row.url, "events": row.events},
    )
    session.commit()


def list_subscriptions(
    *, session: Session, page_size: int, page_token: str | None
) -> tuple[list[WebhookSubscription], str | None]:
    """One page of subscriptions by id."""
    after = decode_token(page_token, {}, int)
    return scalar_page(
        session=session,
        stmt=select(WebhookSubscription),
        key=WebhookSubscription.id,
        after=after,
        page_size=page_size,
        filters={},
    )


def subscription_read(*, session: Session, row: WebhookSubscription) -> WebhookRead:
    """Convert a subscription, with its delivery counts (never its secret)."""
    counts = dict(
        session.execute(
            select(WebhookDelivery.status, func.count())
            .where(WebhookDelivery.subscription_id == row.id)
            .group_by(WebhookDelivery.status)
        ).all()
    )
    return WebhookRead(
        id=row.id,
        url=row.url,
        events=[WebhookEvent(e) for e in row.events],
        description=row.description,
        active=row.active,
        created_by=row.created_by,
        created_at=row.created_at,
        pending=int(counts.get(PENDING, 0)),
        delivered=int(counts.get(DELIVERED, 0)),
        failed=int(counts.get(FAILED, 0)),
    )


def enqueue(*, session: Session, event: WebhookEvent, data: Mapping[str, Any]) -> int:
    """Queue ``event`` for every active subscription that wants it (flush only).

    Returns
    -------
    int
        How many deliveries were queued.
    """
    now = utcnow()
    payload = {
        "type": event.value,
        "timestamp": now.isoformat(),
        "data": json.loads(json.dumps(dict(data), default=str)),
    }
    queued = 0
    for sub in session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.active.is_(True))
    ):
        if event.value not in sub.events:
            continue
        session.add(
            WebhookDelivery(
                message_id=f"msg_{uuid.uuid4().hex}",
                subscription_id=sub.id,
                event_type=event.value,
                payload=payload,
                status=PENDING,
                next_attempt_at=now,
                created_at=now,
            )
        )
        queued += 1
    if queued:
        session.flush()
    return queued


def due_deliveries(*, session: Session, now: dt.datetime, limit: int = 50) -> list[int]:
    """Ids of pending deliveries whose next attempt is due, oldest first."""
    return list(
        session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
    )


def body_of(delivery: WebhookDelivery) -> bytes:
    """Return the exact bytes sent (and signed)."""
    return json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()


def signed_headers(*, secret: str, message_id: str, body: bytes, at: dt.datetime) -> dict[str, str]:
    """Return the Standard Webhooks headers of one attempt (id, timestamp, signature)."""
    signature = Webhook(secret).sign(message_id, at, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": "millwright-hub-webhooks/1",
    }


def record_attempt(
    *,
    session: Session,
    delivery: WebhookDelivery,
    status_code: int | None,
    error: str,
    latency_ms: float,
    backoff_s: float,
    max_attempts: int,
) -> None:
    """Record one attempt: delivered on 2xx, else retried with exponential backoff (commits)."""
    now = utcnow()
    delivery.attempts += 1
    delivery.last_status_code = status_code
    delivery.last_error = error[:500]
    delivery.last_latency_ms = latency_ms
    if status_code is not None and 200 <= status_code < 300:
        delivery.status = DELIVERED
        delivery.delivered_at = now
    elif delivery.attempts >= max_attempts:
        delivery.status = FAILED
    else:
        delay = backoff_s * (2 ** (delivery.attempts - 1))
        delivery.next_attempt_at = now + dt.timedelta(seconds=delay)
    session.commit()


def list_deliveries(*, session: Session, webhook_id: int) -> list[WebhookDelivery]:
    """Every delivery of a subscription, oldest first (tests and the CLI)."""
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == webhook_id)
            .order_by(WebhookDelivery.id)
        )
    )
