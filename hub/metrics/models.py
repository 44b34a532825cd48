"""SQLAlchemy rows of the metrics registry: each report, and its numbers one per row."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, utcnow


class MetricsReportRecord(Base):
    """One report as received; ``report_id`` is the plant's id, unique per plant (de-duplication).

    Uniqueness is ``(plant_id, report_id)``: a plant cannot claim, shadow or block another
    plant's report by posting under its id.
    """

    __tablename__ = "metrics_reports"
    __table_args__ = (
        UniqueConstraint("plant_id", "report_id"),
        Index(
            "ix_metrics_reports_plant_id_model_name_window_start",
            "plant_id",
            "model_name",
            "window_start",
        ),
        # the newest receipt per plant is one probe each (migration dash_scale_0002)
        Index("ix_metrics_reports_plant_id_received_at", "plant_id", "received_at"),
    )

    seq: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[str] = mapped_column(String(36))
    plant_id: Mapped[str] = mapped_column(ForeignKey("plants.id"))
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[dt.datetime]
    window_end: Mapped[dt.datetime]
    # sha256 of the canonical JSON document: a re-send is compared without loading it.
    content_sha256: Mapped[str] = mapped_column(String(64))
    # The plant bumps it when it re-sends the window with labels that arrived later; the
    # stored document and observations are those of the highest revision received.
    revision: Mapped[int] = mapped_column(default=0, server_default="0")
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    observations: Mapped[int]
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    received_by: Mapped[str] = mapped_column(String(200))


class MetricObservation(Base):
    """One number of a report; the identifying columns are copied so filters need no join."""

    __tablename__ = "metric_observations"
    # Every index ends in (window_start, id): the keyset order of the list endpoint. A list
    # filtered by model and metric walks (window_start, id) and filters: an index of its
    # own cost a quarter of the batch ingest's COPY (migration dash_scale_0001).
    __table_args__ = (
        Index("ix_metric_observations_plant_id_window_start_id", "plant_id", "window_start", "id"),
        Index("ix_metric_observations_window_start_id", "window_start", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The report's seq, without a foreign key: a batch writes a report and its numbers in
    # one transaction, reports are never deleted, and the per-row constraint check was a
    # third of a batch's COPY (migration dash_scale_0001).
    report_seq: Mapped[int] = mapped_column(index=True)
    plant_id: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(80))
    subject: Mapped[str | None] = mapped_column(String(80), default=None)
    chunk: Mapped[int | None] = mapped_column(default=None)
    window_start: Mapped[dt.datetime]
    window_end: Mapped[dt.datetime]
    value: Mapped[float] = mapped_column(Float)
    lower: Mapped[float | None] = mapped_column(Float, default=None)
    upper: Mapped[float | None] = mapped_column(Float, default=None)


class MetricLatest(Base):
    """The newest observation of one series, kept at ingest so the summary reads one row each.

    A series is plant x model x kind x metric x subject (``subject`` is ``""`` when the value
    is about no feature, as primary-key columns cannot be null). Newest means the latest
    window end, ties going to the later arrival; a late, older window never replaces it.
    """

    __tablename__ = "metric_latest"

    plant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    metric: Mapped[str] = mapped_column(String(80), primary_key=True)
    subject: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_end: Mapped[dt.datetime]
    observation_id: Mapped[int] = mapped_column(
        ForeignKey("metric_observations.id", ondelete="CASCADE"), index=True
    )


class MetricDaily(Base):
    """Sum and count of one series per UTC day and model version, maintained at ingest.

    Only values about no feature (``subject`` null) are rolled up: the performance,
    latency, alert, integrity-total and impact series the dashboards chart. ``day`` is the
    ``YYYY-MM-DD`` of the observation's window start, so a month is its first 7 characters
    on every database. A revision that replaces a report subtracts the old values first.
    """

    __tablename__ = "metric_daily"
    __table_args__ = (
        Index("ix_metric_daily_model_name_kind_metric_day", "model_name", "kind", "metric", "day"),
        # a comparison's series: index-only, already in GROUP BY order (dash_scale_0002)
        Index(
            "ix_metric_daily_series",
            "model_name",
            "metric",
            "plant_id",
            "kind",
            "day",
            postgresql_include=["total", "count"],
        ),
    )

    plant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    metric: Mapped[str] = mapped_column(String(80), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    total: Mapped[float] = mapped_column(Float)
    count: Mapped[int]


class MetricMonthly(Base):
    """The same sums as :class:`MetricDaily` per calendar month (``YYYY-MM``), for year views.

    Maintained in the same upsert as the daily rows, so a fleet-wide year of impact counts is
    a few thousand rows rather than every day of every series.
    """

    __tablename__ = "metric_monthly"
    __table_args__ = (
        Index("ix_metric_monthly_kind_metric_month", "kind", "metric", "month"),
        # a year of months per plant and model, in the impact query's order (dash_scale_0002)
        Index(
            "ix_metric_monthly_plant_month",
            "kind",
            "plant_id",
            "model_name",
            "month",
            "metric",
            postgresql_include=["total"],
        ),
    )

    plant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    metric: Mapped[str] = mapped_column(String(80), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    total: Mapped[float] = mapped_column(Float)
    count: Mapped[int]
