"""What every Millwright strategy adds to Flower's: participation, validation, records.

:class:`RoundGuard` is a mixin placed before a ``flwr.serverapp.strategy`` class. It

- waits a bounded time for ``min_participants`` connected SuperNodes, then samples only
  from that snapshot (Flower's own sampling waits forever);
- drops replies with NaN/Inf or an update norm beyond ``max_update_norm`` before they
  reach aggregation, recording which plant sent them;
- treats sampled plants that did not reply within the round timeout as drop-outs and
  fails the round with :class:`ParticipationError` when fewer than
  ``min_participants`` valid updates remain;
- evaluates only the plants whose update was aggregated, and records per-plant and
  aggregated metrics, participants and bytes moved into a :class:`RunRecorder`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, cast

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid

from federation.apps.protocol import NUM_EXAMPLES_KEY, PLANT_ID_KEY, PLANT_RECORD_KEY
from federation.flower.results import RunRecorder
from federation.schemas.federated_run import (
    Dropout,
    FailureCode,
    PlantMetrics,
    Rejection,
    RejectReason,
)
from federation.strategies.validation import check_update


class ParticipationError(RuntimeError):
    """Too few plants took part in a round; the run cannot continue."""

    def __init__(self, detail: str, *, server_round: int, code: FailureCode) -> None:
        super().__init__(detail)
        self.detail = detail
        self.server_round = server_round
        self.code = code


class _SnapshotGrid:
    """A Grid whose node list is frozen, so Flower's sampling never blocks on it."""

    def __init__(self, grid: Grid, node_ids: list[int]) -> None:
        self._grid = grid
        self._node_ids = list(node_ids)

    def get_node_ids(self) -> list[int]:
        return list(self._node_ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)


def _metrics_of(record: MetricRecord) -> tuple[int, dict[str, float]]:
    num = int(cast(float, record.get(NUM_EXAMPLES_KEY, 0)))
    values = {
        k: float(cast(float, v))
        for k, v in record.items()
        if k != NUM_EXAMPLES_KEY and isinstance(v, int | float)
    }
    return num, values


class RoundGuard:
    """Mixin over a Flower message-based strategy (see module docstring).

    Parameters
    ----------
    recorder : RunRecorder
        Receives everything observed in the run.
    min_participants : int
        Valid updates a round needs to be aggregated; fewer fails the run.
    max_update_norm : float | None
        Bound on the global L2 norm of an update; None or 0 disables it.
    node_wait_timeout : float
        Seconds to wait for ``min_participants`` connected SuperNodes before a round.
    node_plants : dict[int, str] | None
        Known node id -> plant id (from SuperNode registration); replies also carry it.
    plants : list[str] | None
        Plants the campaign is for; other connected nodes whose registration names
        another plant are never sampled. None or empty: every connected node.
    **kwargs
        Passed on to the Flower strategy.
    """

    def __init__(
        self,
        *,
        recorder: RunRecorder,
        min_participants: int,
        max_update_norm: float | None = None,
        node_wait_timeout: float = 60.0,
        node_plants: dict[int, str] | None = None,
        plants: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if min_participants < 1:
            raise ValueError("min_participants must be at least 1")
        kwargs.setdefault("min_train_nodes", min_participants)
        kwargs.setdefault("min_available_nodes", min_participants)
        kwargs.setdefault("min_evaluate_nodes", 1)
        super().__init__(**kwargs)
        self.recorder = recorder
        self.min_participants = min_participants
        self.max_update_norm = max_update_norm or None
        self.node_wait_timeout = node_wait_timeout
        self.node_plants: dict[int, str] = dict(node_plants or {})
        self.plants = frozenset(plants or ())
        # With a registration map, a node it does not place (one that joined later) is not
        # trusted with a plant-scoped campaign; without one (insecure tests), it may join.
        self._map_given = bool(self.node_plants)
        self._global: list[Any] = []
        self._sampled: dict[int, list[int]] = {}
        self._accepted: dict[int, list[int]] = {}
        self._started: dict[int, float] = {}
        self._down_bytes: dict[int, int] = {}

    # ----------------------------------------------------------------- helpers
    def plant_of(self, node_id: int) -> str:
        """Plant id of ``node_id`` (``node-<id>`` until the node has said)."""
        return self.node_plants.get(node_id, f"node-{node_id}")

    def accepted_nodes(self, server_round: int) -> list[int]:
        """Node ids whose update was aggregated in ``server_round``."""
        return list(self._accepted.get(server_round, []))

    def _eligible(self, node_id: int) -> bool:
        if not self.plants:
            return True
        if node_id in self.node_plants:
            return self.node_plants[node_id] in self.plants
        return not self._map_given

    def _learn_plant(self, msg: Message) -> str:
        node_id = msg.metadata.src_node_id
        if not msg.has_error() and PLANT_RECORD_KEY in msg.content.config_records:
            plant = msg.content.config_records[PLANT_RECORD_KEY].get(PLANT_ID_KEY)
            if isinstance(plant, str) and plant:
                self.node_plants[node_id] = plant
        return self.plant_of(node_id)

    def _triage(
        self, server_round: int, stage: str, replies: Iterable[Message], expected: list[int]
    ) -> list[tuple[Message, str]]:
        """Record error replies and missing replies as drop-outs; return the rest.

        Returns
        -------
        list[tuple[Message, str]]
            Each reply that carries content, with the plant that sent it.
        """
        answered: list[tuple[Message, str]] = []
        replied: set[int] = set()
        for msg in replies:
            node_id = msg.metadata.src_node_id
            replied.add(node_id)
            plant = self._learn_plant(msg)
            if msg.has_error():
                self.recorder.drop(
                    Dropout(round=server_round, stage=stage, plant_id=plant,
                            node_id=node_id, reason=msg.error.reason)
                )
            else:
                answered.append((msg, plant))
        for node_id in expected:
            if node_id not in replied:
                self.recorder.drop(
                    Dropout(round=server_round, stage=stage, plant_id=self.plant_of(node_id),
                            node_id=node_id, reason="no reply within the round timeout")
                )
        return answered

    def _wait_for_nodes(self, grid: Grid, server_round: int) -> list[int]:
        deadline = time.monotonic() + self.node_wait_timeout
        while True:
            nodes = [n for n in grid.get_node_ids() if self._eligible(n)]
            if len(nodes) >= self.min_participants or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        if len(nodes) < self.min_participants:
            raise ParticipationError(
                f"round {server_round}: {len(nodes)} plant(s) connected after "
                f"{self.node_wait_timeout:.0f}s, {self.min_participants} required",
                server_round=server_round,
                code=FailureCode.NOT_ENOUGH_PARTICIPANTS,
            )
        return nodes

    # ------------------------------------------------------------------- train
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Sample from the connected nodes (bounded wait) and remember what was sent."""
        nodes = self._wait_for_nodes(grid, server_round)
        self._started[server_round] = time.monotonic()
        self._global = arrays.to_numpy_ndarrays()
        messages = list(
            super().configure_train(  # type: ignore[misc]
                server_round, arrays, config, cast(Grid, _SnapshotGrid(grid, nodes))
            )
        )
        sampled = [m.metadata.dst_node_id for m in messages]
        self._sampled[server_round] = sampled
        self._down_bytes[server_round] = arrays.count_bytes()
        self.recorder.round(server_round).sampled = [self.plant_of(n) for n in sampled]
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Validate each reply, record it, and aggregate only the valid ones."""
        record = self.recorder.round(server_round)
        accepted: list[Message] = []
        participants: list[str] = []
        sampled = self._sampled.get(server_round, [])
        for msg, plant in self._triage(server_round, "train", replies, sampled):
            node_id = msg.metadata.src_node_id
            content = msg.content
            if len(content.array_records) != 1 or len(content.metric_records) != 1:
                self.recorder.reject(
                    Rejection(round=server_round, plant_id=plant, node_id=node_id,
                              reason=RejectReason.MALFORMED)
                )
                continue
            local = next(iter(content.array_records.values()))
            metrics = next(iter(content.metric_records.values()))
            num, values = _metrics_of(metrics)
            record.train.per_plant[plant] = PlantMetrics(num_examples=num, metrics=values)
            record.bytes_up_per_plant[plant] = local.count_bytes()
            verdict = check_update(
                self._global, local.to_numpy_ndarrays(), max_update_norm=self.max_update_norm
            )
            if not verdict.accepted:
                self.recorder.reject(
                    Rejection(round=server_round, plant_id=plant, node_id=node_id,
                              reason=cast(RejectReason, verdict.reason),
                              update_norm=verdict.update_norm, bound=self.max_update_norm)
                )
                continue
            accepted.append(msg)
            participants.append(plant)
        # Plant ids are learned from replies, so name what was sent only now.
        record.sampled = [self.plant_of(n) for n in sampled]
        down = self._down_bytes.get(server_round, 0)
        record.bytes_down_per_plant = {self.plant_of(n): down for n in sampled}
        record.participants = sorted(participants)
        record.bytes_total = sum(record.bytes_down_per_plant.values()) + sum(
            record.bytes_up_per_plant.values()
        )
        self._accepted[server_round] = [m.metadata.src_node_id for m in accepted]
        self.recorder.flush()
        if len(accepted) < self.min_participants:
            code = (
                FailureCode.NO_VALID_UPDATES if not accepted
                else FailureCode.NOT_ENOUGH_PARTICIPANTS
            )
            raise ParticipationError(
                f"round {server_round}: {len(accepted)} valid update(s) from "
                f"{len(sampled)} sampled plant(s), "
                f"{self.min_participants} required "
                f"(dropped: {record.dropped or 'none'}, rejected: {record.rejected or 'none'})",
                server_round=server_round,
                code=code,
            )
        arrays, agg = super().aggregate_train(server_round, accepted)  # type: ignore[misc]
        if agg is not None:
            record.train.aggregated = _metrics_of(agg)[1]
        return arrays, agg

    # ---------------------------------------------------------------- evaluate
    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Evaluate the new global model on the plants that trained this round."""
        nodes = self._accepted.get(server_round) or list(grid.get_node_ids())
        return list(
            super().configure_evaluate(  # type: ignore[misc]
                server_round, arrays, config, cast(Grid, _SnapshotGrid(grid, nodes))
            )
        )

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Record per-plant evaluation metrics, aggregate, and close the round."""
        record = self.recorder.round(server_round)
        valid: list[Message] = []
        expected = self._accepted.get(server_round, [])
        for msg, plant in self._triage(server_round, "evaluate", replies, expected):
            metrics = next(iter(msg.content.metric_records.values()), None)
            if metrics is None:
                continue
            num, values = _metrics_of(metrics)
            record.evaluate.per_plant[plant] = PlantMetrics(num_examples=num, metrics=values)
            valid.append(msg)
        agg = super().aggregate_evaluate(server_round, valid) if valid else None  # type: ignore[misc]
        if agg is not None:
            record.evaluate.aggregated = _metrics_of(agg)[1]
        started = self._started.get(server_round)
        if started is not None:
            record.seconds = round(time.monotonic() - started, 3)
        self.recorder.complete_round(server_round)
        return cast(MetricRecord | None, agg)
