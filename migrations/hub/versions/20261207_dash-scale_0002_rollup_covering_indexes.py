"""covering indexes for the dashboards' rollup reads; last report per plant by index

Revision ID: dash_scale_0002
Revises: dash_scale_0001
Create Date: 2026-12-07 16:40:00

* ``metric_daily`` (model_name, metric, plant_id, kind, day) INCLUDE (total, count): the
  comparison's year of ten plants is an index-only scan already in GROUP BY order (it was
  an index scan of every plant's rows and a sort, half the query).
* ``metric_monthly`` (kind, plant_id, model_name, month, metric) INCLUDE (total): the
  impact page's year of months comes in its ORDER BY order.
* ``metrics_reports`` (plant_id, received_at): the newest receipt of each plant (inventory)
  is one index probe per plant instead of a scan of every report.

SQLite ignores INCLUDE (the indexes are then plain ones on the key columns).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "dash_scale_0002"
down_revision: str | None = "dash_scale_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_metric_daily_series",
        "metric_daily",
        ["model_name", "metric", "plant_id", "kind", "day"],
        postgresql_include=["total", "count"],
    )
    op.create_index(
        "ix_metric_monthly_plant_month",
        "metric_monthly",
        ["kind", "plant_id", "model_name", "month", "metric"],
        postgresql_include=["total"],
    )
    op.create_index(
        "ix_metrics_reports_plant_id_received_at", "metrics_reports", ["plant_id", "received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_metrics_reports_plant_id_received_at", table_name="metrics_reports")
    op.drop_index("ix_metric_monthly_plant_month", table_name="metric_monthly")
    op.drop_index("ix_metric_daily_series", table_name="metric_daily")
