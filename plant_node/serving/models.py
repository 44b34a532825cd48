"""Serving rows: the prediction log, quarantined batches, operator feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from plant_node.db import Base, CreatedAtMixin, UTCDateTime


class Prediction(CreatedAtMixin, Base):
    """One scored row: what came in, what the model said, why, and how long it took."""

    __tablename__ = "predictions"
    __table_args__ = (
        Index("ix_predictions_created_at", "created_at"),
        Index("ix_predictions_batch_id", "batch_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(32), nullable=False)
    baseline: Mapped[str] = mapped_column(String(64), nullable=False)
    model_name: Mapped[str] = mapped_column(String(128), nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    served_by: Mapped[str] = mapped_column(String(16), nullable=False)  # current|previous|fallback
    fallback: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False, default="champion")
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    features: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    attributions: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float, nullable=False)
    explained_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class QuarantinedBatch(CreatedAtMixin, Base):
    """A rejected request kept whole with its violation report, never silently dropped."""

    __tablename__ = "quarantined_batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    baseline: Mapped[str] = mapped_column(String(64), nullable=False)
    n_rows: Mapped[int] = mapped_column(Integer, nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    violations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Feedback(CreatedAtMixin, Base):
    """An operator's verdict on one prediction, kept as a label for monitoring and retraining."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_prediction_id", "prediction_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("predictions.id", ondelete="CASCADE"), nullable=False
    )
    verdict: Mapped[str] = mapped_column(String(8), nullable=False)  # wrong|right
    true_label: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failure_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    operator: Mapped[str | None] = mapped_column(String(128), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
