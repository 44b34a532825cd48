"""Run the real ServerApp and ClientApp in one process, without SuperLink or network.

For the federation evaluation (many long runs) and fast tests: an in-process Grid hands
each message straight to the ClientApp with that plant's node config. Sampling,
validation, aggregation and the results file are exactly those of a deployed run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flwr.app import Context, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from federation.apps import client_app, server_app
from federation.flower.results import read_results
from federation.schemas.federated_run import FederatedRunResult


@dataclass
class SimulationGrid:
    """Nodes ``node_id -> node config``; ``dead`` nodes are listed but never reply.

    ``offline`` nodes are not listed at all.
    """

    nodes: dict[int, dict[str, Any]]
    run_config: dict[str, Any]
    dead: set[int] = field(default_factory=set)
    offline: set[int] = field(default_factory=set)

    def get_node_ids(self) -> list[int]:
        """Return the ids of the connected nodes."""
        return [n for n in self.nodes if n not in self.offline]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> list[Message]:
        """Deliver each message to the ClientApp of its node; return the replies."""
        replies = []
        for msg in messages:
            node = msg.metadata.dst_node_id
            if node in self.dead or node in self.offline:
                continue
            context = Context(run_id=1, node_id=node, node_config=dict(self.nodes[node]),
                              state=RecordDict(), run_config=dict(self.run_config))
            replies.append(client_app.app(msg, context))
        return replies


def simulation_grid(
    plants: dict[str, dict[str, Any]], run_config: dict[str, Any]
) -> SimulationGrid:
    """Build a grid with one node per plant (node ids 101, 102, ... in order).

    Parameters
    ----------
    plants : dict[str, dict[str, Any]]
        Plant id -> extra node config (e.g. ``data-dir``, ``max-units``).
    run_config : dict[str, Any]
        The run config every ClientApp call sees.
    """
    # Flower stamps messages with the identity of the app process; play the ServerApp.
    TaskIdentity.run_id = 1
    TaskIdentity.node_id = 0
    TaskIdentity.task_id = 1
    nodes = {
        101 + i: {"plant-id": plant, **extra} for i, (plant, extra) in enumerate(plants.items())
    }
    return SimulationGrid(nodes=nodes, run_config=dict(run_config))


def simulate_run(
    plants: dict[str, dict[str, Any]],
    run_config: dict[str, Any],
    *,
    results_path: Path,
    dead: set[str] | None = None,
    offline: set[str] | None = None,
) -> tuple[FederatedRunResult | None, BaseException | None]:
    """Run the ServerApp to completion in-process.

    Returns
    -------
    tuple[FederatedRunResult | None, BaseException | None]
        The results document and the exception the ServerApp raised (None on success).
    """
    config = {**run_config, "results-path": str(results_path)}
    grid = simulation_grid(plants, config)
    by_plant = {cfg["plant-id"]: node for node, cfg in grid.nodes.items()}
    grid.dead = {by_plant[p] for p in dead or set()}
    grid.offline = {by_plant[p] for p in offline or set()}
    context = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config=config)
    error: BaseException | None = None
    try:
        server_app.main(grid, context)  # type: ignore[arg-type]
    except Exception as exc:  # the ServerApp raises when a run fails; the file says why
        error = exc
    return read_results(results_path), error
