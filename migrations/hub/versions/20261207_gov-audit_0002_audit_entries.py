"""audit_entries: the append-only, hash-chained audit trail

Revision ID: gov_audit_0002
Revises: gov_audit_0001
Create Date: 2026-12-07 01:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'gov_audit_0002'
down_revision: str | None = 'gov_audit_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_entries',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('before_json', sa.Text(), nullable=True),
    sa.Column('after_json', sa.Text(), nullable=True),
    sa.Column('reason', sa.String(length=2000), nullable=True),
    sa.Column('flags_json', sa.String(length=500), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('entry_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_entries')),
    sa.UniqueConstraint('entry_hash', name=op.f('uq_audit_entries_entry_hash'))
    )
    op.create_index('ix_audit_entries_action_seq', 'audit_entries', ['action', 'seq'], unique=False)
    op.create_index('ix_audit_entries_actor_seq', 'audit_entries', ['actor', 'seq'], unique=False)
    op.create_index('ix_audit_entries_at', 'audit_entries', ['at'], unique=False)
    op.create_index('ix_audit_entries_subject_seq', 'audit_entries', ['subject', 'seq'], unique=False)


def downgrade() -> None:
    op.drop_table('audit_entries')
