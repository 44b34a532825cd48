"""retraining and scheduler: trigger firings, line signals, queue labels, APScheduler job store, run ledger

The ``apscheduler_jobs`` table is APScheduler 3's SQLAlchemyJobStore table, column for
column; the job store finds it here and never creates it.

Revision ID: retrain_node_0001
Revises: sec_node_0001
Create Date: 2026-12-07 12:49:28.265292+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plant_node.db


revision: str = 'retrain_node_0001'
down_revision: str | None = 'sec_node_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('apscheduler_jobs',
    sa.Column('id', sa.Unicode(length=191), nullable=False),
    sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
    sa.Column('job_state', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apscheduler_jobs'))
    )
    with op.batch_alter_table('apscheduler_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_apscheduler_jobs_next_run_time'), ['next_run_time'], unique=False)

    op.create_table('line_signals',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('baseline', sa.String(length=64), nullable=True),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', plant_node.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_line_signals'))
    )
    op.create_table('queue_labels',
    sa.Column('prediction_id', sa.String(length=32), nullable=False),
    sa.Column('baseline', sa.String(length=64), nullable=False),
    sa.Column('label', sa.Float(), nullable=False),
    sa.Column('priority', sa.Float(), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('created_at', plant_node.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('prediction_id', name=op.f('pk_queue_labels'))
    )
    with op.batch_alter_table('queue_labels', schema=None) as batch_op:
        batch_op.create_index('ix_queue_labels_created_at', ['created_at'], unique=False)

    op.create_table('retraining_firings',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('baseline', sa.String(length=64), nullable=False),
    sa.Column('model_name', sa.String(length=128), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('policy', sa.String(length=200), nullable=False),
    sa.Column('trigger', sa.String(length=64), nullable=False),
    sa.Column('condition', sa.String(length=32), nullable=False),
    sa.Column('fired_at', plant_node.db.UTCDateTime(), nullable=False),
    sa.Column('basis', sa.String(length=64), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('labelled_window', sa.Integer(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('created_at', plant_node.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retraining_firings'))
    )
    with op.batch_alter_table('retraining_firings', schema=None) as batch_op:
        batch_op.create_index('ix_retraining_firings_trigger_fired_at', ['trigger', 'fired_at'], unique=False)

    op.create_table('scheduler_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job', sa.String(length=100), nullable=False),
    sa.Column('scheduled_at', plant_node.db.UTCDateTime(), nullable=False),
    sa.Column('started_at', plant_node.db.UTCDateTime(), nullable=False),
    sa.Column('finished_at', plant_node.db.UTCDateTime(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduler_runs')),
    sa.UniqueConstraint('job', 'scheduled_at', name=op.f('uq_scheduler_runs_job_scheduled_at'))
    )


def downgrade() -> None:
    op.drop_table('scheduler_runs')
    with op.batch_alter_table('retraining_firings', schema=None) as batch_op:
        batch_op.drop_index('ix_retraining_firings_trigger_fired_at')

    op.drop_table('retraining_firings')
    with op.batch_alter_table('queue_labels', schema=None) as batch_op:
        batch_op.drop_index('ix_queue_labels_created_at')

    op.drop_table('queue_labels')
    op.drop_table('line_signals')
    with op.batch_alter_table('apscheduler_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_apscheduler_jobs_next_run_time'))

    op.drop_table('apscheduler_jobs')
