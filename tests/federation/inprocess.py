"""An in-process Grid that delivers messages straight to the ClientApp (fast strategy tests)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flwr.app import Context, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from federation.apps import client_app
from federation.apps.tasks import write_toy_plant_data


class InProcessGrid:
    """Nodes 101, 102, ... are plants; ``dead`` nodes are listed online but never reply."""

    def __init__(self, plants: dict[int, str], data_dir: Path | None, run_config: dict[str, Any]):
        self.plants = plants
        self.data_dir = data_dir
        self.run_config = run_config
        self.dead: set[int] = set()
        self.offline: set[int] = set()
        self.sent: list[Message] = []

    def get_node_ids(self) -> list[int]:
        return [n for n in self.plants if n not in self.offline]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> list[Message]:
        replies = []
        for msg in messages:
            self.sent.append(msg)
            node = msg.metadata.dst_node_id
            if node in self.dead or node in self.offline:
                continue
            node_config: dict[str, Any] = {"plant-id": self.plants[node]}
            if self.data_dir is not None:
                node_config["data-dir"] = str(self.data_dir)
            context = Context(run_id=1, node_id=node, node_config=node_config,
                              state=RecordDict(), run_config=dict(self.run_config))
            reply = client_app.app(msg, context)
            replies.append(reply)
        return replies


def make_grid(tmp_path: Path, run_config: dict[str, Any], n_plants: int = 3) -> InProcessGrid:
    # Flower stamps messages with the identity of the app process; play the ServerApp.
    TaskIdentity.run_id = 1
    TaskIdentity.node_id = 0
    TaskIdentity.task_id = 1
    plants = {101 + i: f"plant-{chr(ord('a') + i)}" for i in range(n_plants)}
    for plant in plants.values():
        write_toy_plant_data(tmp_path / "data", plant)
    return InProcessGrid(plants, tmp_path / "data", run_config)
