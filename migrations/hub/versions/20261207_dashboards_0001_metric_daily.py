"""metrics: a daily rollup of every feature-less series, maintained at ingest for dashboards

Revision ID: dashboards_0001
Revises: sec_wire_0001
Create Date: 2026-12-07 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'dashboards_0001'
down_revision: str | None = 'sec_wire_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('metric_daily',
    sa.Column('plant_id', sa.String(length=64), nullable=False),
    sa.Column('model_name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('metric', sa.String(length=80), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('plant_id', 'model_name', 'kind', 'metric', 'day', 'model_version', name=op.f('pk_metric_daily'))
    )
    with op.batch_alter_table('metric_daily', schema=None) as batch_op:
        batch_op.create_index('ix_metric_daily_model_name_kind_metric_day', ['model_name', 'kind', 'metric', 'day'], unique=False)
    # Reports stored before this revision: roll their observations up once.
    op.execute(
        "INSERT INTO metric_daily (plant_id, model_name, kind, metric, day, model_version, total, count) "
        "SELECT plant_id, model_name, kind, metric, " + _day_expr() + ", model_version, SUM(value), COUNT(*) "
        "FROM metric_observations WHERE subject IS NULL "
        "GROUP BY plant_id, model_name, kind, metric, " + _day_expr() + ", model_version"
    )


def _day_expr() -> str:
    if op.get_bind().dialect.name == 'sqlite':
        return "substr(window_start, 1, 10)"
    return "to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def downgrade() -> None:
    with op.batch_alter_table('metric_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_metric_daily_model_name_kind_metric_day')
    op.drop_table('metric_daily')
