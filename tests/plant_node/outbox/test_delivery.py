"""Store-and-forward against a real receiver process: long outage, and SIGKILL mid-delivery."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from federation.hub_client import HubClient
from federation.schemas.registry import PlantCreate
from plant_node.db import make_engine, make_session_factory, managed_session, upgrade_database
from plant_node.outbox import service as outbox_service
from plant_node.outbox.deliverers import HttpEventDeliverer
from plant_node.outbox.sender import OutboxSender
from plant_node.outbox.types import RetryPolicy
from tests.plant_node.outbox import procs

pytestmark = pytest.mark.slow
STREAMS = ("alerts", "feedback", "rollout")


def _full_outbox(data_dir: Path) -> tuple[Engine, sessionmaker[Session], list[str]]:
    """A migrated node database in ``data_dir`` with a first round of 30 messages per stream."""
    url = f"sqlite:///{data_dir / 'node.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    return engine, factory, _enqueue_round(factory, "initial", 30)


def _enqueue_round(factory: sessionmaker[Session], tag: str, per_stream: int) -> list[str]:
    keys: list[str] = []
    with managed_session(factory) as session:
        for i in range(per_stream):
            for stream in STREAMS:
                msg = outbox_service.enqueue(
                    session=session,
                    stream=stream,
                    payload={"tag": tag, "i": i, "text": "x" * 50},
                    kind=f"{stream}.test",
                )
                keys.append(msg.idempotency_key)
    return keys


def _wait(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def _pending(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return outbox_service.get_stats(session=session).pending


def _assert_exactly_once_in_order(receiver_db: Path, keys: list[str]) -> None:
    accepted = procs.accepted(receiver_db)
    accepted_keys = [k for k, _, _ in accepted]
    assert len(accepted_keys) == len(set(accepted_keys)) == len(keys)
    assert set(accepted_keys) == set(keys)
    seqs: dict[str, list[int]] = defaultdict(list)
    for _, stream, seq in accepted:
        seqs[stream].append(seq)
    for stream, got in seqs.items():
        assert got == list(range(1, len(got) + 1)), f"{stream} out of order: {got}"


def test_receiver_down_for_a_long_stretch_then_back(tmp_path: Path) -> None:
    # Prepare: a migrated node database, a sender pointed at a port where nothing listens.
    url = f"sqlite:///{tmp_path / 'node.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    port = procs.free_port()
    receiver_db = tmp_path / "receiver.db"
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2.0)
    sender = OutboxSender(
        factory,
        HttpEventDeliverer(client, "plant-a"),
        policy=RetryPolicy(base_delay_s=0.02, max_delay_s=0.25),
    )
    keys = _enqueue_round(factory, "before", 15)
    sender.start(poll_interval_s=0.02)
    receiver = None
    try:
        # Execute: the hub stays down while the plant keeps producing.
        for r in range(4):
            time.sleep(0.5)
            keys += _enqueue_round(factory, f"during-{r}", 5)
        with factory() as session:
            items = outbox_service.list_items(session=session)
        heads = [i for i in items if i.seq == 1]
        rest = [i for i in items if i.seq > 1]
        assert all(h.attempts >= 3 and h.delivered_at is None for h in heads)
        assert all(i.attempts == 0 for i in rest)  # each stream stops at its head
        assert procs.accepted(receiver_db) == []

        receiver = procs.start_receiver(port, receiver_db)
        _wait(lambda: _pending(factory) == 0, 30, "outbox drained")
    finally:
        sender.stop()
        client.close()
        if receiver is not None:
            procs.stop(receiver)
        engine.dispose()

    # Assert: every message exactly once at the receiver, in order per stream.
    _assert_exactly_once_in_order(receiver_db, keys)
    assert len(keys) == 3 * (15 + 4 * 5)


def _start_node(
    data_dir: Path, hub_port: int, node_port: int, *, hub_token: str | None = None
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable, str(procs.REPO / "millwright.py"), "node", "serve",
            "--plant", "plant-k", "--hub", f"http://127.0.0.1:{hub_port}",
            "--data-dir", str(data_dir), "--port", str(node_port),
        ],
        cwd=procs.REPO,
        env=procs.child_env(
            MILLWRIGHT_NODE_OUTBOX_POLL_INTERVAL_S="0.05",
            MILLWRIGHT_NODE_OUTBOX_BASE_DELAY_S="0.05",
            MILLWRIGHT_NODE_OUTBOX_MAX_DELAY_S="0.5",
            **({"MILLWRIGHT_NODE_HUB_TOKEN": hub_token} if hub_token else {}),
        ),
    )  # fmt: skip
    return proc


def test_node_killed_mid_delivery_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # Prepare: a node database full of messages, a slow receiver (accepts, then answers late).
    data_dir = tmp_path / "node"
    engine, factory, keys = _full_outbox(data_dir)
    hub_port, node_port = procs.free_port(), procs.free_port()
    receiver_db = tmp_path / "receiver.db"
    receiver = procs.start_receiver(hub_port, receiver_db, delay_s=0.015)
    node = None
    kills = 0
    try:
        # Execute: SIGKILL the real node process twice while it is delivering.
        for round_no in range(2):
            node = _start_node(data_dir, hub_port, node_port)
            target = (round_no + 1) * 30
            _wait(lambda t=target: len(procs.accepted(receiver_db)) >= t, 60, f">= {target}")
            keys += _enqueue_round(factory, f"round-{round_no}", 4)  # written while it runs
            node.send_signal(signal.SIGKILL)
            node.wait(10)
            kills += 1
        node = _start_node(data_dir, hub_port, node_port)
        _wait(lambda: _pending(factory) == 0, 60, "outbox drained after restarts")
        procs.wait_http(f"http://127.0.0.1:{node_port}/v1/health", proc=node)
    finally:
        if node is not None:
            procs.stop(node)
        procs.stop(receiver)
        engine.dispose()

    # Assert: nothing lost, nothing duplicated at the receiver, order kept per stream.
    assert kills == 2
    _assert_exactly_once_in_order(receiver_db, keys)
    assert procs.request_count(receiver_db) >= len(keys)


def _start_real_hub(tmp_path: Path, port: int) -> tuple[subprocess.Popen[bytes], str, str]:
    """Migrate and serve a real hub; enroll plant-k; return (process, admin, plant token)."""
    env = procs.child_env(
        MILLWRIGHT_HUB_DATABASE_URL=f"sqlite:///{tmp_path / 'hub.db'}",
        MILLWRIGHT_HUB_ARTIFACT_ROOT=str(tmp_path / "artifacts"),
        MILLWRIGHT_HUB_PORT=str(port),
        MILLWRIGHT_HUB_ACCESS_LOG="false",
    )
    cli = [sys.executable, str(procs.REPO / "millwright.py"), "hub"]

    def token(*args: str) -> str:
        out = subprocess.run([*cli, "create-token", *args, "--format", "json"], env=env,
                             cwd=tmp_path, check=True, capture_output=True, text=True)
        return str(json.loads(out.stdout)["token"])

    subprocess.run([*cli, "db", "upgrade"], env=env, cwd=tmp_path, check=True, capture_output=True)
    admin = token("--role", "admin", "--name", "test")
    hub = subprocess.Popen([*cli, "serve"], env=env, cwd=tmp_path)
    procs.wait_http(f"http://127.0.0.1:{port}/readyz", proc=hub)
    with HubClient(f"http://127.0.0.1:{port}", token=admin) as client:
        client.create_plant(PlantCreate(id="plant-k", name="Plant K", site="K", lines=["l1"]))
    return hub, admin, token("--role", "plant", "--plant", "plant-k", "--name", "node-k")


def test_node_killed_mid_delivery_to_the_real_hub_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    # Prepare: the real hub (its events endpoint de-duplicates by event id) and a full outbox.
    data_dir = tmp_path / "node"
    engine, factory, keys = _full_outbox(data_dir)
    hub_port, node_port = procs.free_port(), procs.free_port()
    hub, admin, plant_token = _start_real_hub(tmp_path, hub_port)
    client = HubClient(f"http://127.0.0.1:{hub_port}", token=admin)
    node = None
    try:
        def held() -> int:
            return sum(1 for _ in client.iter_events("plant-k"))

        # Execute: SIGKILL the real node process while it is delivering, then restart it.
        node = _start_node(data_dir, hub_port, node_port, hub_token=plant_token)
        _wait(lambda: held() >= 20, 60, ">= 20 events at the hub")
        keys += _enqueue_round(factory, "while-running", 4)
        node.send_signal(signal.SIGKILL)
        node.wait(10)
        pending_at_kill = _pending(factory)
        node = _start_node(data_dir, hub_port, node_port, hub_token=plant_token)
        _wait(lambda: _pending(factory) == 0, 60, "outbox drained after the restart")
        events = list(client.iter_events("plant-k"))
    finally:
        if node is not None:
            procs.stop(node)
        client.close()
        procs.stop(hub)
        engine.dispose()

    # Assert: the kill interrupted delivery; the hub holds every message once, in stream order.
    assert pending_at_kill > 0
    ids = [e.id for e in events]
    assert len(ids) == len(set(ids)) == len(keys) and set(ids) == set(keys)
    seqs: dict[str, list[int]] = defaultdict(list)
    for event in events:
        seqs[event.payload["outbox"]["stream"]].append(event.payload["outbox"]["seq"])
    assert set(seqs) == set(STREAMS)
    for stream, got in seqs.items():
        assert sorted(got) == list(range(1, len(got) + 1)), f"{stream}: {got}"
