"""Periodic ``rollout.stats`` for the hub: the counters its rollout engine decides on.

The hub's abort criteria read, per plant and version, the newest ``rollout.*`` event whose
payload has ``stats`` (``hub.rollouts.evidence``): ``samples``, ``fallbacks`` (or
``fallback_rate``), ``contract_violations`` and ``p99_ms``. :class:`RolloutStatsReporter`
builds them from what the serving process already counts and queues them in the outbox
(one small event per baseline and role), so a hub-driven rollout decides on a real node's
numbers:

- ``champion``: the version the baseline serves, counted since the reporter first saw it
  serving (rows scored, rows answered by the previous version or the rule fallback,
  contract violations of rejected requests, and the p99 of request latency as the upper
  bound of its histogram bucket), from the node's Prometheus counters;
- the staged challenger (``shadow`` or ``canary``, whoever staged it: the hub follower or an
  engineer), from its rollout guard: the rows it answered and the rows it failed on (the
  champion answered those), counted since it was staged and on across a shadow -> canary
  restage of the same version (the hub counts a canary's predictions on from the shadow's);
  the rows the data contract refused while it was staged and their share of the rows the
  line sent meanwhile (a canary answers only its share of them, so the rate is taken over
  the line); the p99 of its inference and its disagreement with the champion over the
  guard's sliding window.

It runs in the hub follower's thread (:class:`plant_node.serving.follow.HubFollower`), never
on the request path: one enqueue per report in its own short transaction. A report is sent
when its counts moved since the last one, or as a heartbeat after ``heartbeat_s`` (so an
idle line still shows the hub it is alive); at most two events per baseline per interval.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from plant_node.db import managed_session, utcnow
from plant_node.metrics import LATENCY_BUCKETS, NodeMetrics
from plant_node.serving import service as serving_service
from plant_node.serving.flows import ServingFlows

log = logging.getLogger("millwright.node.stats")

#: Who can answer a row besides the champion (``served_by`` values that count as fallback).
FALLBACK_SERVERS = ("previous", "fallback")


@dataclass(frozen=True)
class _Counters:
    rows: float
    fallbacks: float
    violations: float
    #: Cumulative request counts per latency bucket upper bound (seconds), ``+Inf`` last.
    buckets: tuple[float, ...]


def _read(metrics: NodeMetrics, baseline: str) -> _Counters:
    registry = metrics.registry

    def value(name: str, labels: dict[str, str]) -> float:
        return float(registry.get_sample_value(name, labels) or 0.0)

    served = {
        who: value("millwright_node_predictions_total", {"baseline": baseline, "served_by": who})
        for who in ("current", *FALLBACK_SERVERS)
    }
    bounds: dict[float, float] = {}
    for family in metrics.predict_latency.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("baseline") == baseline:
                bounds[float(sample.labels["le"])] = float(sample.value)
    edges = [*LATENCY_BUCKETS, math.inf]
    return _Counters(
        rows=sum(served.values()),
        fallbacks=sum(served[w] for w in FALLBACK_SERVERS),
        violations=value("millwright_node_contract_violations_total", {"baseline": baseline}),
        buckets=tuple(bounds.get(float(edge), 0.0) for edge in edges),
    )


def p99_ms(buckets: tuple[float, ...]) -> float | None:
    """Return the p99 of request latency in ms as the upper bound of its histogram bucket.

    ``buckets`` are cumulative counts per bound of :data:`plant_node.metrics.LATENCY_BUCKETS`
    then ``+Inf``; ``None`` when no request was counted. A p99 in the last (open) bucket is
    reported as that bucket's lower bound, the largest value the histogram can vouch for.
    """
    total = buckets[-1] if buckets else 0.0
    if total <= 0:
        return None
    wanted = math.ceil(0.99 * total)
    for bound, count in zip(LATENCY_BUCKETS, buckets, strict=False):
        if count >= wanted:
            return round(bound * 1000.0, 3)
    return round(LATENCY_BUCKETS[-1] * 1000.0, 3)


class RolloutStatsReporter:
    """Queue ``rollout.stats`` events of every baseline at most every ``interval_s``.

    Parameters
    ----------
    serving
        The serving flows (runtimes, challengers, metrics) of this process.
    plant_id
        This node's plant.
    session_factory
        The node database (the outbox).
    interval_s
        Seconds between reports; ``0`` turns reporting off.
    heartbeat_s
        A report whose samples did not move is still sent after this long.
    model_of
        Maps a baseline to its registry model name (the follower knows it from the hub's
        assignments); the loaded manifest's name when it returns ``None``.
    clock
        Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        *,
        serving: ServingFlows,
        plant_id: str,
        session_factory: sessionmaker[Session],
        interval_s: float,
        heartbeat_s: float = 300.0,
        model_of: Callable[[str], str | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._serving = serving
        self._plant_id = plant_id
        self._factory = session_factory
        self.interval_s = interval_s
        self.heartbeat_s = heartbeat_s
        self._model_of = model_of or (lambda _baseline: None)
        self._clock = clock
        self._next_at: float | None = None
        #: (baseline, version) -> counters when the version was first seen serving.
        self._start: dict[tuple[str, str], _Counters] = {}
        #: (baseline, role, version) -> (stats last sent, when).
        self._sent: dict[tuple[str, str, str], tuple[dict[str, Any], float]] = {}

    def due(self) -> bool:
        """Whether an interval has passed since the last report (or since the first call)."""
        if self.interval_s <= 0:
            return False
        if self._next_at is None:  # the first report comes one interval after the start
            self._next_at = self._clock() + self.interval_s
            return False
        return self._clock() >= self._next_at

    def collect(self) -> list[dict[str, Any]]:
        """Return the payloads to report now (and remember them as sent)."""
        now = self._clock()
        status = self._serving.rollout_status()
        out: list[dict[str, Any]] = []
        for baseline, runtime in sorted(self._serving.runtimes.items()):
            current = runtime.current
            if current is None:
                continue
            model = self._model_of(baseline) or current.manifest.name
            counters = _read(self._serving.metrics, baseline)
            start = self._start.setdefault((baseline, current.version), counters)
            for key in [k for k in self._start if k[0] == baseline and k[1] != current.version]:
                del self._start[key]  # a version no longer served starts again if it returns
            samples = counters.rows - start.rows
            stats: dict[str, Any] = {
                "samples": int(samples),
                "fallbacks": int(counters.fallbacks - start.fallbacks),
                "contract_violations": int(counters.violations - start.violations),
                "p99_ms": p99_ms(
                    tuple(c - s for c, s in zip(counters.buckets, start.buckets, strict=True))
                ),
            }
            if self._wanted((baseline, "champion", current.version), stats, now):
                out.append(self._payload(baseline, model, current.version, "champion", stats))
            challenger = (status.get(baseline) or {}).get("challenger")
            if challenger:
                refused = int(challenger["refused_rows"])
                line = int(challenger["offered_rows"]) + refused
                staged: dict[str, Any] = {
                    "samples": int(challenger["rows"]),
                    "fallbacks": int(challenger["failed_rows"]),
                    "contract_violations": refused,
                    "contract_violation_rate": round(refused / line, 6) if line else 0.0,
                    "p99_ms": float(challenger["p99_ms"]),
                    "disagreement": float(challenger["disagreement"]),
                }
                role = str(challenger["mode"])
                if self._wanted((baseline, role, str(challenger["version"])), staged, now):
                    out.append(
                        self._payload(baseline, model, str(challenger["version"]), role, staged)
                    )
        self._next_at = now + self.interval_s
        return out

    def _wanted(self, key: tuple[str, str, str], stats: dict[str, Any], now: float) -> bool:
        last = self._sent.get(key)
        if last is not None and last[0] == stats and now - last[1] < self.heartbeat_s:
            return False
        self._sent[key] = (dict(stats), now)
        return True

    def _payload(
        self, baseline: str, model: str, version: str, role: str, stats: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {
            "plant_id": self._plant_id,
            "baseline": baseline,
            "model": model,
            "model_version": version,
            "role": role,
            "stats": dict(stats),
            "actor": "node",
            "at": utcnow().isoformat(),
        }

    def report(self) -> int:
        """Queue the due reports in the outbox; return how many (0 when not due)."""
        if not self.due():
            return 0
        payloads = self.collect()
        if not payloads:
            return 0
        try:
            with managed_session(self._factory) as session:
                for payload in payloads:
                    serving_service.enqueue_rollout_event(
                        session=session, kind="stats", payload=payload
                    )
        except Exception:
            for payload in payloads:  # not sent: the next interval tries again
                self._sent.pop((payload["baseline"], payload["role"], payload["model_version"]))
            raise
        return len(payloads)
