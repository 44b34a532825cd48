"""Monitoring rows: outcomes (late labels), per-chunk results, and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plant_node.db import Base, CreatedAtMixin, UTCDateTime


class Outcome(CreatedAtMixin, Base):
    """A label as it arrived: a maintenance failure record of a unit, or a QA verdict.

    ``natural_key`` makes a repeated record a duplicate: ``failure:<baseline>:<unit>`` (one
    failure per unit id) and ``qa:<prediction id>`` (one verdict per prediction). Operator
    feedback stays in ``feedback`` and is joined as a label too.
    """

    __tablename__ = "outcomes"
    __table_args__ = (
        Index("ix_outcomes_prediction_id", "prediction_id"),
        Index("ix_outcomes_baseline_unit", "baseline", "unit"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # failure | qa
    natural_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    baseline: Mapped[str] = mapped_column(String(64), nullable=False)
    prediction_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("predictions.id", ondelete="CASCADE"), nullable=True
    )
    unit: Mapped[str | None] = mapped_column(String(128), nullable=True)
    failed_at_cycle: Mapped[float | None] = mapped_column(Float, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    label: Mapped[float | None] = mapped_column(Float, nullable=True)


class OutcomeRequest(CreatedAtMixin, Base):
    """An ``Idempotency-Key`` of ``POST /v1/outcomes``, its request hash and first answer."""

    __tablename__ = "outcome_requests"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    response: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class MonitoringChunk(CreatedAtMixin, Base):
    """One chunk of one model version's log: estimated vs realized metric, drift, integrity."""

    __tablename__ = "monitoring_chunks"
    __table_args__ = (UniqueConstraint("baseline", "model_version", "chunk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    baseline: Mapped[str] = mapped_column(String(64), nullable=False)
    model_name: Mapped[str] = mapped_column(String(128), nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    chunk: Mapped[int] = mapped_column(Integer, nullable=False)
    start: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    end: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    n_rows: Mapped[int] = mapped_column(Integer, nullable=False)
    # The first metric (the one the performance alert watches), flattened for queries.
    metric: Mapped[str | None] = mapped_column(String(32), nullable=True)
    estimated: Mapped[float | None] = mapped_column(Float, nullable=True)
    lower: Mapped[float | None] = mapped_column(Float, nullable=True)
    upper: Mapped[float | None] = mapped_column(Float, nullable=True)
    realized: Mapped[float | None] = mapped_column(Float, nullable=True)
    n_labels: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    performance: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    multivariate_drift: Mapped[float | None] = mapped_column(Float, nullable=True)
    top_drift: Mapped[list[list[Any]]] = mapped_column(JSON, nullable=False)
    integrity: Mapped[dict[str, float]] = mapped_column(JSON, nullable=False)
    latency_ms: Mapped[dict[str, float]] = mapped_column(JSON, nullable=False)


class MonitoringAlert(CreatedAtMixin, Base):
    """An incident raised by a monitoring rule: what moved, by how much, since when, why."""

    __tablename__ = "monitoring_alerts"
    __table_args__ = (
        UniqueConstraint("baseline", "model_version", "key", "since_chunk"),
        Index("ix_monitoring_alerts_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    baseline: Mapped[str] = mapped_column(String(64), nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    key: Mapped[str] = mapped_column(String(128), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(8), nullable=False)  # open | closed
    since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    since_chunk: Mapped[int] = mapped_column(Integer, nullable=False)
    raised_chunk: Mapped[int] = mapped_column(Integer, nullable=False)
    cleared_chunk: Mapped[int | None] = mapped_column(Integer, nullable=True)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    worst_value: Mapped[float] = mapped_column(Float, nullable=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    reference_mean: Mapped[float] = mapped_column(Float, nullable=False)
    reference_std: Mapped[float] = mapped_column(Float, nullable=False)
    sigmas: Mapped[float | None] = mapped_column(Float, nullable=True)
    top_features: Mapped[list[list[Any]]] = mapped_column(JSON, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class MonitoringReport(CreatedAtMixin, Base):
    """The newest revision of each metrics report queued for the hub.

    Labels often arrive after a window's report left (a turbofan's truth comes with its
    failure): the chunks' realized metrics are then updated, and the report is queued again
    with the next revision, which the hub keeps in place of the earlier one.
    """

    __tablename__ = "monitoring_reports"
    __table_args__ = (
        Index("ix_monitoring_reports_baseline_model_version", "baseline", "model_version"),
    )

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    baseline: Mapped[str] = mapped_column(String(64), nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    first_chunk: Mapped[int] = mapped_column(Integer, nullable=False)
    last_chunk: Mapped[int] = mapped_column(Integer, nullable=False)
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
