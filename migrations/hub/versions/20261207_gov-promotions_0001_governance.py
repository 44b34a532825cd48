"""governance: published policies, promotion requests, e-signatures, version lifecycle

Revision ID: gov_promotions_0001
Revises: gov_audit_0002
Create Date: 2026-12-07 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'gov_promotions_0001'
down_revision: str | None = 'gov_audit_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'policies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('policy_id', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('document', sa.JSON(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_policies')),
        sa.UniqueConstraint('policy_id', 'version', name=op.f('uq_policies_policy_id_version')),
    )
    op.create_index(op.f('ix_policies_kind'), 'policies', ['kind'], unique=False)
    op.create_table(
        'promotions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('plant_id', sa.String(length=64), nullable=False),
        sa.Column('alias', sa.String(length=20), nullable=False),
        sa.Column('policy_ref', sa.String(length=140), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.String(length=2000), nullable=False),
        sa.Column('requested_by', sa.String(length=200), nullable=False),
        sa.Column('requested_by_user_id', sa.Integer(), nullable=True),
        sa.Column('artifact_sha256', sa.String(length=64), nullable=True),
        sa.Column('evidence', sa.JSON(), nullable=False),
        sa.Column('evidence_sha256', sa.String(length=64), nullable=False),
        sa.Column('binding_sha256', sa.String(length=64), nullable=False),
        sa.Column('decision', sa.JSON(), nullable=True),
        sa.Column('approvals_required', sa.Integer(), nullable=False),
        sa.Column('approver_roles', sa.JSON(), nullable=False),
        sa.Column('break_glass', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], name=op.f('fk_promotions_plant_id_plants')),
        sa.ForeignKeyConstraint(
            ['requested_by_user_id'], ['users.id'],
            name=op.f('fk_promotions_requested_by_user_id_users'),
        ),
        sa.ForeignKeyConstraint(
            ['version_id'], ['model_versions.id'], name=op.f('fk_promotions_version_id_model_versions')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_promotions')),
    )
    op.create_index('ix_promotions_plant_id_id', 'promotions', ['plant_id', 'id'], unique=False)
    op.create_index('ix_promotions_version_id', 'promotions', ['version_id'], unique=False)
    op.create_index(op.f('ix_promotions_status'), 'promotions', ['status'], unique=False)
    op.create_index(
        'uq_promotions_pending', 'promotions', ['version_id', 'plant_id', 'alias'], unique=True,
        postgresql_where=sa.text("status = 'pending_approval'"),
        sqlite_where=sa.text("status = 'pending_approval'"),
    )
    op.create_table(
        'signatures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('promotion_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=200), nullable=False),
        sa.Column('printed_name', sa.String(length=200), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('meaning', sa.String(length=20), nullable=False),
        sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('comment', sa.String(length=2000), nullable=False),
        sa.Column('binding_sha256', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ['promotion_id'], ['promotions.id'], name=op.f('fk_signatures_promotion_id_promotions')
        ),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_signatures_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_signatures')),
    )
    op.create_index(op.f('ix_signatures_promotion_id'), 'signatures', ['promotion_id'], unique=False)
    op.create_table(
        'version_lifecycle',
        sa.Column('plant_id', sa.String(length=64), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('promotion_id', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ['plant_id'], ['plants.id'], name=op.f('fk_version_lifecycle_plant_id_plants')
        ),
        sa.ForeignKeyConstraint(
            ['promotion_id'], ['promotions.id'],
            name=op.f('fk_version_lifecycle_promotion_id_promotions'),
        ),
        sa.ForeignKeyConstraint(
            ['version_id'], ['model_versions.id'],
            name=op.f('fk_version_lifecycle_version_id_model_versions'),
        ),
        sa.PrimaryKeyConstraint('plant_id', 'version_id', name=op.f('pk_version_lifecycle')),
    )


def downgrade() -> None:
    op.drop_table('version_lifecycle')
    op.drop_index(op.f('ix_signatures_promotion_id'), table_name='signatures')
    op.drop_table('signatures')
    op.drop_index('uq_promotions_pending', table_name='promotions')
    op.drop_index(op.f('ix_promotions_status'), table_name='promotions')
    op.drop_index('ix_promotions_version_id', table_name='promotions')
    op.drop_index('ix_promotions_plant_id_id', table_name='promotions')
    op.drop_table('promotions')
    op.drop_index(op.f('ix_policies_kind'), table_name='policies')
    op.drop_table('policies')
