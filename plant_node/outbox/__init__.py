"""Durable store-and-forward of everything bound for the hub, in order per stream."""

from plant_node.outbox.service import enqueue
from plant_node.outbox.types import (
    AlreadyDelivered,
    Deliverer,
    DeliveryConflict,
    OutboxMessage,
    PermanentDeliveryError,
    RetryPolicy,
)

__all__ = [
    "AlreadyDelivered",
    "Deliverer",
    "DeliveryConflict",
    "OutboxMessage",
    "PermanentDeliveryError",
    "RetryPolicy",
    "enqueue",
]
