"""Deliverers: the HTTP one that posts events to the hub, until the hub client carries it."""

from __future__ import annotations

from typing import Any

import httpx

from plant_node.outbox.types import AlreadyDelivered, OutboxMessage, PermanentDeliveryError

# Statuses that mean "this body will never be accepted"; anything else non-2xx is retried.
# 401/403/404 are retried on purpose: a wrong token or an unregistered plant is fixed by an
# operator, and the messages must still be there when that happens.
PERMANENT_STATUSES = frozenset({400, 413, 422})


def event_body(message: OutboxMessage) -> dict[str, Any]:
    """Return the JSON body the hub's events endpoint receives for ``message``."""
    return {
        "event_id": message.idempotency_key,
        "stream": message.stream,
        "seq": message.seq,
        "kind": message.kind,
        "occurred_at": message.created_at.isoformat(),
        "payload": message.payload,
    }


class HttpEventDeliverer:
    """Posts each message to ``POST /api/v1/plants/{plant_id}/events`` with an Idempotency-Key.

    Parameters
    ----------
    client
        An ``httpx.Client`` whose ``base_url`` is the hub (tests pass their own).
    plant_id
        This node's plant id.
    token
        Bearer token of the plant, if the hub requires one.
    """

    def __init__(self, client: httpx.Client, plant_id: str, token: str | None = None) -> None:
        self._client = client
        self._path = f"/api/v1/plants/{plant_id}/events"
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def deliver(self, message: OutboxMessage) -> None:
        """Send one message; see :class:`plant_node.outbox.types.Deliverer` for the contract."""
        response = self._client.post(
            self._path,
            json=event_body(message),
            headers={**self._headers, "Idempotency-Key": message.idempotency_key},
        )
        if response.is_success:
            return
        if response.status_code == 409:
            raise AlreadyDelivered(message.idempotency_key)
        text = response.text[:500]
        if response.status_code in PERMANENT_STATUSES:
            raise PermanentDeliveryError(f"HTTP {response.status_code}: {text}")
        raise RuntimeError(f"HTTP {response.status_code}: {text}")
