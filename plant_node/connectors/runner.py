"""Start and stop the connectors of one or more line mappings beside the node's serving flows."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from plant_node.connectors.base import Connector
from plant_node.connectors.flows import LineFlows
from plant_node.connectors.mapping import LineMapping, load_mapping
from plant_node.connectors.metrics import ConnectorMetrics
from plant_node.metrics import NodeMetrics
from plant_node.serving.flows import ServingFlows

if TYPE_CHECKING:
    from plant_node.deps import NodeState

log = logging.getLogger("millwright.node.connectors")
STATE_KEY = "connectors"


class ConnectorRunner:
    """The connectors of a node, all in one event loop.

    Parameters
    ----------
    mappings
        One mapping per line.
    serving
        The node's serving flows.
    session_factory
        The node's sessions.
    metrics
        The node's metrics; the connector metrics register on its registry.
    """

    def __init__(
        self,
        mappings: list[LineMapping],
        serving: ServingFlows,
        session_factory: sessionmaker[Session],
        metrics: NodeMetrics,
    ) -> None:
        lines = [m.line for m in mappings]
        if len(set(lines)) != len(lines):
            raise ValueError(f"two mappings name the same line: {lines}")
        self.metrics = ConnectorMetrics(metrics.registry)
        self.connectors: list[Connector] = []
        for mapping in mappings:
            flows = LineFlows(mapping, serving, session_factory, self.metrics, metrics.quarantined)
            line: list[Connector] = []
            if mapping.mqtt is not None:
                from plant_node.connectors.mqtt.connector import MqttConnector

                line.append(MqttConnector(flows, mapping.mqtt))
            if mapping.opcua is not None:
                from plant_node.connectors.opcua.connector import OpcuaConnector

                line.append(OpcuaConnector(flows, mapping.opcua))
            for connector in line:
                connector.siblings = line
            self.connectors += line

    @classmethod
    def from_files(
        cls,
        paths: list[Path],
        serving: ServingFlows,
        session_factory: sessionmaker[Session],
        metrics: NodeMetrics,
    ) -> ConnectorRunner:
        """Build the runner of mapping files (validated; raises ``InvalidInput``)."""
        return cls([load_mapping(p) for p in paths], serving, session_factory, metrics)

    def start(self) -> None:
        """Start every connector in the running event loop."""
        for connector in self.connectors:
            connector.start()
            log.info("connector %s/%s started (%s)", connector.line, connector.kind,
                     connector.status.peer)  # fmt: skip

    async def stop(self) -> None:
        """Stop every connector (queued readings are scored first)."""
        for connector in self.connectors:
            await connector.stop()

    def status(self) -> list[dict[str, Any]]:
        """Each connector's state, lag, counts and last error."""
        return [c.snapshot() for c in self.connectors]


def start_in_node(state: NodeState) -> ConnectorRunner | None:
    """Start the connectors named by ``MILLWRIGHT_NODE_CONNECTORS`` inside the node's lifespan.

    They then share the app's event loop, serving flows and metrics; ``GET /v1/connectors``
    shows them. Returns None when no mapping is configured or serving is off.
    """
    paths = state.settings.connectors
    if not paths or state.serving is None:
        return None
    runner = ConnectorRunner.from_files(
        list(paths), state.serving, state.session_factory, state.metrics
    )
    state.extras[STATE_KEY] = runner
    runner.start()
    return runner
