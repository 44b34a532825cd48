"""Metrics schemas: defined once in :mod:`federation.schemas`, re-exported here."""

from federation.schemas.metrics_registry import (
    DailyPoint,
    DailySeries,
    MetricKind,
    MetricObservationPage,
    MetricObservationRead,
    MetricsReportBatch,
    MetricsReportBatchReceipt,
    MetricsReportReceipt,
    MetricSummary,
    MonthlyTotal,
    MonthlyTotals,
)
from federation.schemas.metrics_report import MetricsReport

__all__ = [
    "DailyPoint",
    "DailySeries",
    "MetricsReportBatch",
    "MetricsReportBatchReceipt",
    "MonthlyTotal",
    "MonthlyTotals",
    "MetricKind",
    "MetricObservationPage",
    "MetricObservationRead",
    "MetricSummary",
    "MetricsReport",
    "MetricsReportReceipt",
]
