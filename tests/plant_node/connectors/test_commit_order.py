"""The connector worker: bursts scored in one call, published in order, only once committed."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

from prometheus_client import CollectorRegistry

from plant_node.connectors.base import Connector
from plant_node.connectors.flows import Answer
from plant_node.connectors.mapping import parse_mapping
from plant_node.connectors.metrics import ConnectorMetrics
from plant_node.connectors.readings import Reading
from tests.plant_node.connectors.conftest import ai4i_line


class _Flows:
    """Scores every burst at once; its log commits resolve only when the test says so."""

    def __init__(self, linger_ms: float = 0.0) -> None:
        doc = ai4i_line("plant/t", 1883)
        doc["buffer"] = {"max_batch": 64, "linger_ms": linger_ms}
        self.mapping = parse_mapping(doc)
        self.metrics = ConnectorMetrics(CollectorRegistry())
        self.quarantined_by: dict[str, int] = {}
        self.bursts: list[list[int]] = []
        self.commits: list[Future[None]] = []

    def score(self, connector: str, readings: list[Reading], durables: Any = None) -> Any:
        assert durables is not None  # the worker never blocks the loop on a commit
        self.bursts.append([r.record["n"] for r in readings])
        commit: Future[None] = Future()
        self.commits.append(commit)
        durables.append(commit)
        return [Answer(r, {"n": r.record["n"]}, False) for r in readings]

    def alert(self, *args: Any, **kwargs: Any) -> bool:
        return True


class _Peer(Connector):
    kind = "fake"

    def __init__(self, flows: Any) -> None:
        super().__init__(flows, "nowhere")
        self.delivered: list[int] = []

    def backoff(self) -> tuple[float, float]:
        return 0.01, 0.01

    async def _session(self, first: bool) -> None:
        await self._stop.wait()

    def deliver(self, answers: list[Answer]) -> None:
        self.delivered += [a.prediction["n"] for a in answers]

    def pending_answers(self) -> int:
        return 0


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_answers_are_published_in_order_only_after_their_commit() -> None:
    async def scenario() -> tuple[Any, ...]:
        flows = _Flows()
        peer = _Peer(flows)
        peer.start()
        for n in range(5):  # arrive together: one burst
            peer.offer(Reading({"n": n}, "t"))
        await _settle()
        for n in range(5, 8):  # the next burst, scored while the first is still committing
            peer.offer(Reading({"n": n}, "t"))
        await _settle()
        before = list(peer.delivered)
        flows.commits[1].set_result(None)  # the later commit first: nothing may overtake
        await _settle()
        overtaken = list(peer.delivered)
        flows.commits[0].set_result(None)
        await _settle()
        in_order = list(peer.delivered)
        peer.offer(Reading({"n": 8}, "t"))
        await _settle()
        flows.commits[2].set_exception(OSError("disk full"))
        await _settle()
        await peer.stop()
        return flows.bursts, before, overtaken, in_order, peer.delivered, peer.status

    bursts, before, overtaken, in_order, final, status = asyncio.run(scenario())

    assert bursts == [[0, 1, 2, 3, 4], [5, 6, 7], [8]]
    assert before == [] and overtaken == []  # nothing published before its rows are durable
    assert in_order == list(range(8))
    assert final == list(range(8))  # the burst whose commit failed is never published
    assert "log commit failed" in (status.last_error or "")
    assert status.counts["predicted"] == 8


def test_linger_gathers_readings_that_trickle_in_into_one_burst() -> None:
    async def scenario() -> list[list[int]]:
        flows = _Flows(linger_ms=200)
        peer = _Peer(flows)
        peer.start()
        for n in range(3):
            peer.offer(Reading({"n": n}, "t"))
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        for c in flows.commits:
            c.set_result(None)
        await peer.stop()
        return flows.bursts

    assert asyncio.run(scenario()) == [[0, 1, 2]]
