"""metric observations: no foreign key to their report, no model x metric index (ingest)

Revision ID: dash_scale_0001
Revises: gov_pg_0001
Create Date: 2026-12-07 16:20:00

A batch writes its reports and their observations in one transaction and reports are
never deleted, so the per-row check of ``report_seq`` against ``metrics_reports`` guarded
nothing the ingest does not; under COPY it was a third of the observations' insert time.
The index on ``report_seq`` stays (a revision replaces a report's observations by it).

The (model_name, metric, window_start, id) index goes too: the dashboards read the rollups,
and a list filtered by model and metric walks (window_start, id) and filters. It cost a
quarter of the observations' COPY.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "dash_scale_0001"
down_revision: str | None = "gov_pg_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("metric_observations", schema=None) as batch_op:
        batch_op.drop_constraint(
            "fk_metric_observations_report_seq_metrics_reports", type_="foreignkey"
        )
        batch_op.drop_index("ix_metric_observations_model_name_metric_window_start_id")


def downgrade() -> None:
    with op.batch_alter_table("metric_observations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_metric_observations_model_name_metric_window_start_id",
            ["model_name", "metric", "window_start", "id"],
        )
        batch_op.create_foreign_key(
            "fk_metric_observations_report_seq_metrics_reports",
            "metrics_reports",
            ["report_seq"],
            ["seq"],
            ondelete="CASCADE",
        )
