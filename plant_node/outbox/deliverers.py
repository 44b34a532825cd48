"""Deliverers: send outbox messages to the hub's ``POST /api/v1/plants/{plant_id}/events``.

The hub's contract (``federation.schemas.events``): a batch ``{"events": [{id, kind,
occurred_at, payload}]}``, stored all-or-none, idempotent by (plant, event id); ids it already
holds with the same content come back in ``duplicates`` of a 2xx answer, and a 409 means it
holds the id with other content (a conflict, never "delivered"). The outbox's idempotency
key is the event id, and the stream position travels inside the payload under ``outbox`` so
the hub can check order.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from federation.schemas.metrics_report import MetricsReport
from federation.schemas.retraining import RetrainingRequestCreate
from plant_node.outbox.types import DeliveryConflict, OutboxMessage, PermanentDeliveryError

# Statuses that mean "this body will never be accepted"; anything else non-2xx is retried.
# 401/403/404 are retried on purpose: a wrong token or an unregistered plant is fixed by an
# operator, and the messages must still be there when that happens.
PERMANENT_STATUSES = frozenset({400, 413, 422})


def event_body(message: OutboxMessage) -> dict[str, Any]:
    """Return the wire form of one event (``federation.schemas.events.PlantEventCreate``)."""
    return {
        "id": message.idempotency_key,
        "kind": message.kind,
        "occurred_at": message.created_at.isoformat(),
        "payload": {**message.payload, "outbox": {"stream": message.stream, "seq": message.seq}},
    }


class HttpEventDeliverer:
    """Posts each message as a one-event batch with plain ``httpx``.

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
            json={"events": [event_body(message)]},
            headers={**self._headers, "Idempotency-Key": message.idempotency_key},
        )
        if response.is_success:
            return
        if response.status_code == 409:  # the hub holds the id with other content
            raise DeliveryConflict(f"HTTP 409: {response.text[:500]}")
        text = response.text[:500]
        if response.status_code in PERMANENT_STATUSES:
            raise PermanentDeliveryError(f"HTTP {response.status_code}: {text}")
        raise RuntimeError(f"HTTP {response.status_code}: {text}")


#: Stream of the monitoring job's anonymized reports (``federation.schemas.metrics_report``).
METRICS_STREAM = "metrics"
#: Stream of fired retraining triggers (``federation.schemas.retraining``).
RETRAINING_STREAM = "retraining"


class EventPoster(Protocol):
    """The part of ``federation.hub_client.HubClient`` the outbox needs."""

    def post_events(self, plant_id: str, events: list[Any]) -> Any:
        """Deliver events; duplicates are reported, not errors."""
        ...

    def submit_metrics_report(
        self, plant_id: str, report: MetricsReport, *, idempotency_key: str
    ) -> Any:
        """Deliver one metrics report (``POST /api/v1/plants/{id}/metrics-reports``)."""
        ...

    def get_assignments(self, plant_id: str) -> Any:
        """Return the plant's assignments (aliases with their registry version ids)."""
        ...

    def submit_retraining_request(self, plant_id: str, request: RetrainingRequestCreate) -> Any:
        """Deliver one retraining request (``POST /api/v1/plants/{id}/retraining-requests``)."""
        ...


class HubClientDeliverer:
    """Delivers through the typed hub client.

    The ``metrics`` stream goes to ``HubClient.submit_metrics_report`` (the hub de-duplicates
    by report id, and the outbox key is that id); every other stream is an event batch for
    ``HubClient.post_events``.

    Parameters
    ----------
    client
        A ``federation.hub_client.HubClient`` (or anything with ``post_events``).
    plant_id
        This node's plant id.
    """

    def __init__(self, client: EventPoster, plant_id: str) -> None:
        self._client = client
        self._plant_id = plant_id

    def deliver(self, message: OutboxMessage) -> None:
        """Send one message; the hub's ``InvalidInput`` is permanent, the rest is retried."""
        from pydantic import ValidationError

        from federation.errors import Conflict, InvalidInput, PayloadTooLarge
        from federation.schemas.events import PlantEventCreate

        report: MetricsReport | None = None
        if message.stream == METRICS_STREAM:
            try:  # validated again: a report that fails the schema never leaves the plant
                report = MetricsReport.model_validate(message.payload)
            except ValidationError as exc:
                raise PermanentDeliveryError(f"invalid metrics report: {exc}") from exc
        if message.stream == RETRAINING_STREAM:
            self._retraining(message)
            return
        try:
            if report is not None:
                self._client.submit_metrics_report(
                    self._plant_id, report, idempotency_key=message.idempotency_key
                )
            else:
                event = PlantEventCreate.model_validate(event_body(message))
                self._client.post_events(self._plant_id, [event])
        except Conflict as exc:  # identical re-sends are 2xx; a 409 is other content
            raise DeliveryConflict(str(exc)) from exc
        except (InvalidInput, PayloadTooLarge) as exc:
            raise PermanentDeliveryError(str(exc)) from exc

    def _retraining(self, message: OutboxMessage) -> None:
        """Resolve the served version label to its registry id, then send the request.

        The id comes from the plant's own assignments (what the hub told it to run): a plant
        token may not browse the registry, and a node asks only about what it serves.
        """
        from pydantic import ValidationError

        from federation.errors import Conflict, InvalidInput, PayloadTooLarge

        payload = dict(message.payload)
        label = str(payload.pop("version", ""))
        model = str(payload.get("model"))
        assigned = self._client.get_assignments(self._plant_id).items
        # The node names its model by baseline (``cmapss``); the registry by model name
        # (``cmapss-rul-cnn``): the label alone decides when the names differ.
        match = [a for a in assigned if a.model == model and a.version == label] or [
            a for a in assigned if a.version == label
        ]
        if len({(a.model, a.version_id) for a in match}) != 1:
            raise PermanentDeliveryError(
                f"retraining request: the hub assigns {self._plant_id} no single version "
                f"{label!r} of {model!r} (assigned: "
                f"{', '.join(f'{a.model} {a.version}' for a in assigned) or 'nothing'})"
            )
        try:
            request = RetrainingRequestCreate.model_validate(
                {**payload, "model": match[0].model, "version_id": match[0].version_id}
            )
        except ValidationError as exc:
            raise PermanentDeliveryError(f"invalid retraining request: {exc}") from exc
        try:
            self._client.submit_retraining_request(self._plant_id, request)
        except Conflict as exc:
            raise DeliveryConflict(str(exc)) from exc
        except (InvalidInput, PayloadTooLarge) as exc:
            raise PermanentDeliveryError(str(exc)) from exc
