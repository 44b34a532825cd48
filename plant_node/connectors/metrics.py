"""Prometheus metrics of the connectors, on the node's registry (shown at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0)


class ConnectorMetrics:
    """Counters and gauges labelled by line and connector (``mqtt``, ``opcua``).

    Parameters
    ----------
    registry
        The node's registry (``NodeMetrics.registry``); build one per registry.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["line", "connector"]
        self.readings = Counter(
            "millwright_node_connector_readings_total",
            "Readings received from the line, by outcome (predicted, quarantined, dropped).",
            [*labels, "outcome"],
            registry=registry,
        )
        self.quarantined = Counter(
            "millwright_node_connector_quarantined_total",
            "Messages quarantined, by reason.",
            [*labels, "reason"],
            registry=registry,
        )
        self.dropped = Counter(
            "millwright_node_connector_dropped_total",
            "Readings dropped because the scoring queue was full (what=reading) or answers "
            "dropped because the peer stayed away past the buffer (what=answer).",
            [*labels, "what"],
            registry=registry,
        )
        self.reconnects = Counter(
            "millwright_node_connector_reconnects_total",
            "Connections re-established after a loss (OPC UA: resubscribed).",
            labels,
            registry=registry,
        )
        self.connected = Gauge(
            "millwright_node_connector_connected",
            "1 while the connector is connected to its broker or server.",
            labels,
            registry=registry,
        )
        self.queued = Gauge(
            "millwright_node_connector_queued",
            "Readings waiting to be scored (back-pressure).",
            labels,
            registry=registry,
        )
        self.pending = Gauge(
            "millwright_node_connector_pending_answers",
            "Answers waiting for the broker or server.",
            labels,
            registry=registry,
        )
        self.lag = Histogram(
            "millwright_node_connector_lag_seconds",
            "Reading received to answer handed to the peer.",
            labels,
            buckets=LAG_BUCKETS,
            registry=registry,
        )
