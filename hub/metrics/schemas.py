"""Metrics schemas: defined once in :mod:`federation.schemas`, re-exported here."""

from federation.schemas.metrics_registry import (
    MetricKind,
    MetricObservationPage,
    MetricObservationRead,
    MetricsReportReceipt,
    MetricSummary,
)
from federation.schemas.metrics_report import MetricsReport

__all__ = [
    "MetricKind",
    "MetricObservationPage",
    "MetricObservationRead",
    "MetricSummary",
    "MetricsReport",
    "MetricsReportReceipt",
]
