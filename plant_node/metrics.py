"""Prometheus metrics of one node app, on an app-owned registry (tests build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


class NodeMetrics:
    """Every metric the node exports at ``/metrics``.

    Parameters
    ----------
    registry
        Registry to register on; a fresh one by default.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.predict_latency = Histogram(
            "millwright_node_predict_latency_seconds",
            "Time to validate, featurize and score one predict request.",
            ["baseline"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.explain_latency = Histogram(
            "millwright_node_explain_latency_seconds",
            "Time to compute Shapley attributions for one prediction.",
            ["baseline", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.explanations_late = Counter(
            "millwright_node_explanations_late",
            "Predictions whose explanation was not stored within explain_deadline_s of the "
            "prediction, including those the full backlog left unexplained (never dropped "
            "silently: their rows say why).",
            ["baseline"],
            registry=r,
        )
        self.predictions = Counter(
            "millwright_node_predictions_total",
            "Rows scored, by who answered (current, previous or fallback).",
            ["baseline", "served_by"],
            registry=r,
        )
        self.fallbacks = Counter(
            "millwright_node_fallbacks_total",
            "Times a model version was skipped, by reason.",
            ["baseline", "reason"],
            registry=r,
        )
        self.violations = Counter(
            "millwright_node_contract_violations_total",
            "Data-contract violations found in rejected requests.",
            ["baseline"],
            registry=r,
        )
        self.quarantined = Counter(
            "millwright_node_quarantined_batches_total",
            "Requests rejected and quarantined.",
            ["baseline"],
            registry=r,
        )
        self.model_info = Gauge(
            "millwright_node_model_info",
            "1 for each model version loaded, by role.",
            ["baseline", "role", "name", "version"],
            registry=r,
        )
        self.outbox = Counter(
            "millwright_node_outbox_results_total",
            "Outbox delivery attempts by outcome.",
            ["stream", "outcome"],
            registry=r,
        )
        self.feedback = Counter(
            "millwright_node_feedback_total",
            "Operator feedback received, by verdict.",
            ["verdict"],
            registry=r,
        )
        # Monitoring: set from the node database at each scrape (the job may run elsewhere).
        self.monitoring_alerts = Gauge(
            "millwright_node_monitoring_alerts",
            "Monitoring alerts by baseline, kind (performance, drift, integrity) and status.",
            ["baseline", "kind", "status"],
            registry=r,
        )
        self.monitoring_chunks = Gauge(
            "millwright_node_monitoring_chunks",
            "Chunks of the prediction log monitored so far.",
            ["baseline"],
            registry=r,
        )
        self.monitoring_metric = Gauge(
            "millwright_node_monitoring_metric",
            "Latest chunk's performance metric, estimated (before labels) and realized.",
            ["baseline", "metric", "kind"],
            registry=r,
        )
