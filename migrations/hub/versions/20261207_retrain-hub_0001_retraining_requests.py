"""retraining: plants' retraining requests and the hub's decisions; the scheduler job store

Revision ID: retrain_hub_0001
Revises: fleet_more_0001
Create Date: 2026-12-07 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'retrain_hub_0001'
down_revision: str | None = 'fleet_more_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # APScheduler 3.x SQLAlchemyJobStore's table (hub/scheduler.py), owned by Alembic.
    op.create_table('apscheduler_jobs',
    sa.Column('id', sa.Unicode(length=191), nullable=False),
    sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
    sa.Column('job_state', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apscheduler_jobs'))
    )
    op.create_index(op.f('ix_apscheduler_jobs_next_run_time'), 'apscheduler_jobs', ['next_run_time'], unique=False)
    op.create_table('retraining_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plant_id', sa.String(length=64), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('policy_ref', sa.String(length=200), nullable=False),
    sa.Column('trigger', sa.String(length=64), nullable=False),
    sa.Column('condition', sa.String(length=40), nullable=False),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('labelled_window', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=2000), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decision', sa.String(length=20), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('plants', sa.JSON(), nullable=False),
    sa.Column('evaluation', sa.JSON(), nullable=False),
    sa.Column('audit_seq', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('candidate_version_id', sa.Integer(), nullable=True),
    sa.Column('candidate_outcome', sa.String(length=20), nullable=True),
    sa.Column('promotion_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_retraining_requests_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['candidate_version_id'], ['model_versions.id'], name=op.f('fk_retraining_requests_candidate_version_id_model_versions')),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], name=op.f('fk_retraining_requests_plant_id_plants')),
    sa.ForeignKeyConstraint(['promotion_id'], ['promotions.id'], name=op.f('fk_retraining_requests_promotion_id_promotions')),
    sa.ForeignKeyConstraint(['version_id'], ['model_versions.id'], name=op.f('fk_retraining_requests_version_id_model_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retraining_requests')),
    sa.UniqueConstraint('plant_id', 'request_id', name=op.f('uq_retraining_requests_plant_id_request_id')),
    )
    op.create_index('ix_retraining_requests_trigger', 'retraining_requests', ['plant_id', 'trigger', 'fired_at'], unique=False)
    op.create_index('ix_retraining_requests_model', 'retraining_requests', ['model', 'condition', 'fired_at'], unique=False)
    op.create_index(op.f('ix_retraining_requests_decision'), 'retraining_requests', ['decision'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_retraining_requests_decision'), table_name='retraining_requests')
    op.drop_index('ix_retraining_requests_model', table_name='retraining_requests')
    op.drop_index('ix_retraining_requests_trigger', table_name='retraining_requests')
    op.drop_table('retraining_requests')
    op.drop_index(op.f('ix_apscheduler_jobs_next_run_time'), table_name='apscheduler_jobs')
    op.drop_table('apscheduler_jobs')
