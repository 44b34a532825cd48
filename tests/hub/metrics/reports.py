"""Builders of metrics reports as a plant node would send them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from federation.schemas.metrics_report import (
    AlertCounts,
    AlertKindName,
    ChunkSummary,
    DriftScores,
    FeatureDrift,
    IntegrityCounts,
    LatencyPercentiles,
    MetricsReport,
    MetricValue,
    pseudonymize,
    report_id,
)

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
KEY = b"plant-held-key-0123456789"


def window(day: int) -> tuple[dt.datetime, dt.datetime]:
    """The day-long window ``day`` days after T0."""
    start = T0 + dt.timedelta(days=day)
    return start, start + dt.timedelta(days=1)


def report(
    plant_id: str = "fd001",
    *,
    day: int = 0,
    model_name: str = "turbofan-rul",
    model_version: str = "1.0",
    rmse: float = 18.0,
    **overrides: Any,
) -> MetricsReport:
    """A two-chunk report for one day: estimates with bounds, realized rmse on chunk 0."""
    start, end = window(day)
    mid = start + dt.timedelta(hours=12)
    fields: dict[str, Any] = {
        "report_id": report_id(
            plant_id=plant_id,
            model_name=model_name,
            model_version=model_version,
            start=start,
            end=end,
            secret=KEY,
        ),
        "plant_id": plant_id,
        "model_name": model_name,
        "model_version": model_version,
        "window_start": start,
        "window_end": end,
        "n_rows": 400,
        "min_rows_policy": 50,
        "chunks": [
            ChunkSummary(
                chunk=0,
                start=start,
                end=mid,
                n_rows=200,
                metrics=[
                    MetricValue(
                        metric="rmse",
                        estimated=rmse,
                        lower=rmse - 2,
                        upper=rmse + 2,
                        realized=rmse + 1,
                        n_labels=40,
                    )
                ],
                multivariate_drift=0.8,
                drifted_features=["s2"],
            ),
            ChunkSummary(
                chunk=1,
                start=mid,
                end=end,
                n_rows=200,
                metrics=[
                    MetricValue(
                        metric="rmse", estimated=rmse + 0.5, lower=rmse - 1.5, upper=rmse + 2.5
                    )
                ],
            ),
        ],
        "drift": [
            FeatureDrift(
                feature="s2", scores=DriftScores(js=0.1, ks=0.2, psi=0.3), drifted_chunks=1
            ),
        ],
        "prediction_drift": DriftScores(psi=0.05),
        "integrity": IntegrityCounts(
            null_values={"s3": 4},
            stuck_sensors={"s4": 1},
            stuck_units=[pseudonymize("unit-17", KEY)],
            missing_rows=2,
        ),
        "latency_ms": LatencyPercentiles(p50=1.5, p95=4.0, p99=9.0),
        "alerts": AlertCounts(
            raised=1, open=1, true_alarms=1, by_kind={AlertKindName.PERFORMANCE: 1}
        ),
    }
    fields.update(overrides)
    return MetricsReport(**fields)


def body(rep: MetricsReport) -> dict[str, Any]:
    """The JSON body of a report."""
    return rep.model_dump(mode="json")
