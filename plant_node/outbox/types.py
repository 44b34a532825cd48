"""What the outbox hands to a deliverer, the deliverer protocol, and the retry policy."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class OutboxMessage:
    """A message as the deliverer sees it (never the ORM row).

    Attributes
    ----------
    stream
        Ordering domain, e.g. ``alerts`` or ``feedback``.
    seq
        Position within the stream, starting at 1, without gaps.
    kind
        Event type understood by the hub, e.g. ``alert.model_fallback``.
    idempotency_key
        Globally unique key; the hub accepts each key at most once.
    payload
        JSON-serializable body.
    created_at
        When the message was enqueued (UTC).
    """

    stream: str
    seq: int
    kind: str
    idempotency_key: str
    payload: dict[str, Any]
    created_at: datetime


class AlreadyDelivered(Exception):
    """The receiver says it holds this exact message already (a 2xx duplicate): count as sent.

    Never raise it for a plain HTTP 409: that means the receiver holds the key with *other*
    content, which is a :class:`DeliveryConflict`.
    """


class DeliveryConflict(Exception):
    """The receiver holds this key with other content (HTTP 409): NOT delivered.

    Retried with backoff (a concurrent write may settle it); after
    :attr:`RetryPolicy.conflict_attempts` it is parked as ``conflict`` for an operator, never
    counted as delivered.
    """


class PermanentDeliveryError(Exception):
    """The receiver refused this message for good (e.g. 422); retrying cannot help."""


@runtime_checkable
class Deliverer(Protocol):
    """Sends one message to the hub.

    Implementations MUST be idempotent by ``message.idempotency_key`` on the receiving side,
    MUST return normally only once the receiver has durably accepted the message, and MUST
    raise :class:`AlreadyDelivered` or return normally when the receiver already holds the
    same message under the key, and :class:`DeliveryConflict` when it holds the key with
    other content. Any other exception means "not delivered, try again later" unless it is
    a :class:`PermanentDeliveryError`.
    """

    def deliver(self, message: OutboxMessage) -> None:
        """Deliver ``message`` or raise."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter.

    Parameters
    ----------
    base_delay_s
        Delay after the first failure.
    max_delay_s
        Cap on the delay.
    jitter
        Fraction of the delay that is randomized (0 = none, 1 = full jitter).
    conflict_attempts
        Attempts a conflicting message gets before it is parked as ``conflict``.
    """

    base_delay_s: float = 0.5
    max_delay_s: float = 300.0
    jitter: float = 0.5
    conflict_attempts: int = 5

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Return the delay in seconds before the next attempt after ``attempts`` failures.

        Parameters
        ----------
        attempts
            Number of failed attempts so far (>= 1).
        rng
            Random source for the jitter.

        Returns
        -------
        float
            Seconds to wait, in ``[(1 - jitter) * d, d]`` with ``d = min(max, base * 2**(n-1))``.
        """
        exp = min(max(attempts - 1, 0), 62)
        capped = min(self.max_delay_s, self.base_delay_s * (2.0**exp))
        return capped * (1.0 - self.jitter * rng.random())
