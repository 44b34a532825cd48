"""Outbox service and sender against an in-process deliverer."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from federation.errors import Conflict, ErrorCode, InvalidInput
from plant_node.db import managed_session, utcnow
from plant_node.outbox import service as outbox_service
from plant_node.outbox.models import OutboxStatus
from plant_node.outbox.sender import OutboxSender
from plant_node.outbox.types import (
    AlreadyDelivered,
    OutboxMessage,
    PermanentDeliveryError,
    RetryPolicy,
)


class RecordingDeliverer:
    def __init__(self) -> None:
        self.sent: list[OutboxMessage] = []
        self.fail_keys: set[str] = set()
        self.reject_keys: set[str] = set()
        self.duplicate_keys: set[str] = set()

    def deliver(self, message: OutboxMessage) -> None:
        if message.idempotency_key in self.fail_keys:
            raise ConnectionError("hub unreachable")
        if message.idempotency_key in self.reject_keys:
            raise PermanentDeliveryError("HTTP 422: bad payload")
        if message.idempotency_key in self.duplicate_keys:
            raise AlreadyDelivered(message.idempotency_key)
        self.sent.append(message)


def _enqueue(factory: sessionmaker[Session], stream: str, n: int, start: int = 0) -> list[str]:
    keys = []
    with managed_session(factory) as session:
        for i in range(start, start + n):
            keys.append(
                outbox_service.enqueue(
                    session=session, stream=stream, payload={"i": i}, key=f"{stream}-{i}"
                ).idempotency_key
            )
    return keys


def test_enqueue_is_part_of_the_callers_transaction(
    session_factory: sessionmaker[Session],
) -> None:
    with pytest.raises(RuntimeError), managed_session(session_factory) as session:
        outbox_service.enqueue(session=session, stream="alerts", payload={"x": 1})
        raise RuntimeError("caller fails after enqueueing")

    with session_factory() as session:
        assert outbox_service.list_items(session=session) == []


def test_seq_is_per_stream_and_gapless(session_factory: sessionmaker[Session]) -> None:
    _enqueue(session_factory, "alerts", 3)
    _enqueue(session_factory, "feedback", 2)
    _enqueue(session_factory, "alerts", 1, start=3)

    with session_factory() as session:
        items = outbox_service.list_items(session=session)

    assert [(i.stream, i.seq) for i in items] == [
        ("alerts", 1), ("alerts", 2), ("alerts", 3), ("alerts", 4),
        ("feedback", 1), ("feedback", 2),
    ]  # fmt: skip


def test_same_key_same_message_is_idempotent_different_is_conflict(
    session_factory: sessionmaker[Session],
) -> None:
    with managed_session(session_factory) as session:
        first = outbox_service.enqueue(session=session, stream="s", payload={"a": 1}, key="k")
        again = outbox_service.enqueue(session=session, stream="s", payload={"a": 1}, key="k")
        with pytest.raises(Conflict) as exc:
            outbox_service.enqueue(session=session, stream="s", payload={"a": 2}, key="k")

    assert again.seq == first.seq == 1
    assert exc.value.code == ErrorCode.CONFLICT


def test_sender_delivers_in_order_and_marks_delivered(
    session_factory: sessionmaker[Session],
) -> None:
    keys = _enqueue(session_factory, "alerts", 5) + _enqueue(session_factory, "feedback", 3)
    deliverer = RecordingDeliverer()

    report = OutboxSender(session_factory, deliverer).drain_once()

    assert report.delivered == 8
    assert sorted(m.idempotency_key for m in deliverer.sent) == sorted(keys)
    for stream in ("alerts", "feedback"):
        seqs = [m.seq for m in deliverer.sent if m.stream == stream]
        assert seqs == sorted(seqs)
    with session_factory() as session:
        assert outbox_service.get_stats(session=session).delivered == 8


def test_failure_stops_only_its_stream_and_backs_off(
    session_factory: sessionmaker[Session],
) -> None:
    alerts = _enqueue(session_factory, "alerts", 3)
    _enqueue(session_factory, "feedback", 2)
    deliverer = RecordingDeliverer()
    deliverer.fail_keys = {alerts[1]}
    policy = RetryPolicy(base_delay_s=10.0, max_delay_s=60.0, jitter=0.5)
    sender = OutboxSender(session_factory, deliverer, policy=policy, rng=random.Random(0))

    before = utcnow()
    report = sender.drain_once()
    second = sender.drain_once()  # the failed head is not due yet: nothing is retried

    assert [m.idempotency_key for m in deliverer.sent if m.stream == "alerts"] == [alerts[0]]
    assert len([m for m in deliverer.sent if m.stream == "feedback"]) == 2
    assert report.failed == 1 and report.blocked_streams == ["alerts"]
    assert second.delivered == second.failed == 0
    with session_factory() as session:
        head = outbox_service.get_head(session=session, stream="alerts")
        third = outbox_service.get_item(session=session, idempotency_key=alerts[2])
    assert head is not None and head.idempotency_key == alerts[1]
    assert head.attempts == 1 and head.last_error and "unreachable" in head.last_error
    assert before + timedelta(seconds=5) <= head.next_attempt_at <= utcnow() + timedelta(seconds=10)
    assert third is not None and third.attempts == 0


def test_already_delivered_counts_as_delivered_and_rejected_is_kept(
    session_factory: sessionmaker[Session],
) -> None:
    keys = _enqueue(session_factory, "alerts", 3)
    deliverer = RecordingDeliverer()
    deliverer.duplicate_keys = {keys[0]}
    deliverer.reject_keys = {keys[1]}

    report = OutboxSender(session_factory, deliverer).drain_once()

    assert (report.delivered, report.rejected) == (2, 1)
    with session_factory() as session:
        statuses = [i.status for i in outbox_service.list_items(session=session)]
    assert statuses == [OutboxStatus.DELIVERED, OutboxStatus.REJECTED, OutboxStatus.DELIVERED]


@pytest.mark.parametrize("attempts", [1, 2, 5, 30, 200])
def test_backoff_is_exponential_capped_and_jittered(attempts: int) -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=60.0, jitter=0.5)
    rng = random.Random(attempts)

    delays = [policy.delay(attempts, rng) for _ in range(200)]

    ceiling = min(60.0, 0.5 * 2 ** (attempts - 1))
    assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1


def test_keys_must_be_valid_hub_event_ids(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidInput) as exc, managed_session(session_factory) as session:
        outbox_service.enqueue(session=session, stream="s", payload={}, key="has space/slash")

    assert exc.value.code == ErrorCode.INVALID_INPUT


def test_prune_keeps_pending_and_recent(session_factory: sessionmaker[Session]) -> None:
    from plant_node.outbox.jobs import prune_delivered

    keys = _enqueue(session_factory, "alerts", 3)
    OutboxSender(session_factory, RecordingDeliverer()).drain_once(max_messages=2)
    with managed_session(session_factory) as session:
        old = outbox_service.get_item(session=session, idempotency_key=keys[0])
        assert old is not None
        old.delivered_at = utcnow() - timedelta(days=40)

    deleted = prune_delivered(session_factory, retention_days=30)

    with session_factory() as session:
        left = [i.idempotency_key for i in outbox_service.list_items(session=session)]
    assert deleted == 1 and left == keys[1:]
