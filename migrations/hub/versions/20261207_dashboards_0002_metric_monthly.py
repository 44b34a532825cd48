"""metrics: a monthly rollup beside the daily one (year-long, fleet-wide views read it)

Revision ID: dashboards_0002
Revises: dashboards_0001
Create Date: 2026-12-07 01:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'dashboards_0002'
down_revision: str | None = 'dashboards_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('metric_monthly',
    sa.Column('plant_id', sa.String(length=64), nullable=False),
    sa.Column('model_name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('metric', sa.String(length=80), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('plant_id', 'model_name', 'kind', 'metric', 'month', 'model_version', name=op.f('pk_metric_monthly'))
    )
    with op.batch_alter_table('metric_monthly', schema=None) as batch_op:
        batch_op.create_index('ix_metric_monthly_kind_metric_month', ['kind', 'metric', 'month'], unique=False)
    # Everything already rolled up by day, once.
    op.execute(
        "INSERT INTO metric_monthly (plant_id, model_name, kind, metric, month, model_version, total, count) "
        "SELECT plant_id, model_name, kind, metric, substr(day, 1, 7), model_version, SUM(total), SUM(count) "
        "FROM metric_daily GROUP BY plant_id, model_name, kind, metric, substr(day, 1, 7), model_version"
    )


def downgrade() -> None:
    with op.batch_alter_table('metric_monthly', schema=None) as batch_op:
        batch_op.drop_index('ix_metric_monthly_kind_metric_month')
    op.drop_table('metric_monthly')
