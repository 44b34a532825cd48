"""monitoring reports: the newest revision of each metrics report, re-sent on late labels

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plant_node.db


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('monitoring_reports',
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.Column('baseline', sa.String(length=64), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('first_chunk', sa.Integer(), nullable=False),
    sa.Column('last_chunk', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', plant_node.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('report_id', name=op.f('pk_monitoring_reports'))
    )
    with op.batch_alter_table('monitoring_reports', schema=None) as batch_op:
        batch_op.create_index('ix_monitoring_reports_baseline_model_version', ['baseline', 'model_version'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('monitoring_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_monitoring_reports_baseline_model_version')
    op.drop_table('monitoring_reports')
