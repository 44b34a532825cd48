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
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from federation.errors import InvalidInput, NotFound
from federation.schemas.rollouts import (
    WebhookAttemptRead,
    WebhookCreate,
    WebhookDeliveryRead,
    WebhookEvent,
    WebhookRead,
)
from hub.audit import service as audit_service
from hub.db import begin_write, utcnow
from hub.pagination import decode_token, scalar_page
from hub.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
#: Largest number of subscriptions (every event fans out to each).
MAX_SUBSCRIPTIONS = 200


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


#: ``session.info`` key of the active subscriptions read by the current transaction.
_ACTIVE = "millwright_webhook_subscriptions"


def _active_subscriptions(session: Session) -> list[WebhookSubscription]:
    """Return the active subscriptions, read once per transaction (a use case may enqueue twice).

    Keyed by the transaction: the use cases that change subscriptions commit, so the next
    transaction reads them afresh.
    """
    transaction = session.get_transaction()
    cached = session.info.get(_ACTIVE)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return list(cached[1])
    subs = list(
        session.scalars(select(WebhookSubscription).where(WebhookSubscription.active.is_(True)))
    )
    session.info[_ACTIVE] = (session.get_transaction(), subs)
    return subs


def enqueue(*, session: Session, event: WebhookEvent, data: Mapping[str, Any]) -> int:
    """Queue ``event`` for every active subscription that wants it (flush only).

    Returns
    -------
    int
        How many deliveries were queued.
    """
    return enqueue_many(session=session, event=event, items=[data])


def enqueue_many(
    *, session: Session, event: WebhookEvent, items: Sequence[Mapping[str, Any]]
) -> int:
    """Queue one ``event`` per item for every subscription that wants it (one lookup)."""
    if not items:
        return 0
    subs = [sub for sub in _active_subscriptions(session) if event.value in sub.events]
    if not subs:
        return 0
    now = utcnow()
    queued = 0
    for data in items:
        payload = {
            "type": event.value,
            "timestamp": now.isoformat(),
            "data": json.loads(json.dumps(dict(data), default=str)),
        }
        for sub in subs:
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


def signing_secrets(sub: WebhookSubscription, *, now: dt.datetime) -> list[str]:
    """Return the secrets a delivery is signed with.

    The current one, and the previous one while its rotation grace period lasts (a receiver
    verifying with either secret accepts).
    """
    out = [sub.secret]
    expires = sub.previous_secret_expires_at
    if sub.previous_secret and expires is not None and expires > now:
        out.append(sub.previous_secret)
    return out


def signed_headers(
    *, secret: str | list[str], message_id: str, body: bytes, at: dt.datetime
) -> dict[str, str]:
    """Return the Standard Webhooks headers of one attempt (id, timestamp, signature).

    With several secrets (a rotation in progress) ``webhook-signature`` carries one
    space-separated signature per secret, as the spec allows.
    """
    secrets_ = [secret] if isinstance(secret, str) else secret
    signature = " ".join(Webhook(s).sign(message_id, at, body) for s in secrets_)
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
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            at=now,
            status_code=status_code,
            error=error[:500],
            latency_ms=latency_ms,
        )
    )
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


def attempts_of(*, session: Session, delivery_ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    """Return the attempt log of deliveries, oldest attempt first."""
    out: dict[int, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
    if not delivery_ids:
        return out
    for row in session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.id)
    ):
        out[row.delivery_id].append(row)
    return out


def page_deliveries(
    *, session: Session, webhook_id: int, status: str | None, page_size: int, page_token: str | None
) -> tuple[list[WebhookDelivery], str | None]:
    """One page of a subscription's deliveries by id (optionally one status).

    Raises
    ------
    NotFound
        When the subscription does not exist.
    """
    get_subscription_or_raise(session=session, webhook_id=webhook_id)
    filters = {"webhook_id": webhook_id, "status": status}
    after = decode_token(page_token, filters, int)
    stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == webhook_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    return scalar_page(
        session=session,
        stmt=stmt,
        key=WebhookDelivery.id,
        after=after,
        page_size=page_size,
        filters=filters,
    )


def redeliver(
    *, session: Session, webhook_id: int, delivery_id: int, actor: str
) -> WebhookDelivery:
    """Queue a delivery again now, with a fresh attempt budget and the same ``webhook-id``.

    Raises
    ------
    NotFound
        When the subscription or the delivery (of that subscription) does not exist.
    """
    begin_write(session)
    get_subscription_or_raise(session=session, webhook_id=webhook_id)
    row = session.get(WebhookDelivery, delivery_id)
    if row is None or row.subscription_id != webhook_id:
        raise NotFound(f"delivery {delivery_id} of webhook {webhook_id} does not exist.")
    before = row.status
    row.status = PENDING
    row.attempts = 0
    row.next_attempt_at = utcnow()
    session.flush()
    audit_service.append(
        session=session,
        actor=actor,
        action="webhook.redeliver",
        subject=f"webhook:{webhook_id}/delivery:{delivery_id}",
        before={"status": before},
        after={"status": PENDING},
    )
    session.commit()
    return row


def rotate_secret(
    *, session: Session, webhook_id: int, grace_s: float, actor: str
) -> WebhookSubscription:
    """Give a subscription a new secret; the old one still signs for ``grace_s`` seconds.

    Raises
    ------
    NotFound
        When the subscription does not exist.
    """
    begin_write(session)
    row = get_subscription_or_raise(session=session, webhook_id=webhook_id)
    row.previous_secret = row.secret
    row.previous_secret_expires_at = utcnow() + dt.timedelta(seconds=grace_s)
    row.secret = new_secret()
    session.flush()
    audit_service.append(
        session=session,
        actor=actor,
        action="webhook.rotate_secret",
        subject=f"webhook:{webhook_id}",
        after={"previous_secret_valid_until": row.previous_secret_expires_at.isoformat()},
    )
    session.commit()
    return row


def deliveries_read(*, session: Session, rows: list[WebhookDelivery]) -> list[WebhookDeliveryRead]:
    """Convert deliveries with their attempt logs (one query for every log)."""
    logs = attempts_of(session=session, delivery_ids=[r.id for r in rows])
    return [
        WebhookDeliveryRead(
            id=r.id,
            message_id=r.message_id,
            event_type=r.event_type,
            status=r.status,
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            created_at=r.created_at,
            delivered_at=r.delivered_at,
            log=[
                WebhookAttemptRead(
                    at=a.at, status_code=a.status_code, error=a.error, latency_ms=a.latency_ms
                )
                for a in logs[r.id]
            ],
        )
        for r in rows
    ]
