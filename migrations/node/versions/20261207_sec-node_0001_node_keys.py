"""node keys: hashed API keys of the plant node (roles line, engineer, monitor)

Revision ID: sec_node_0001
Revises: 0003
Create Date: 2026-12-07 01:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plant_node.db


revision: str = 'sec_node_0001'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('node_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('revoked_at', plant_node.db.UTCDateTime(), nullable=True),
    sa.Column('created_at', plant_node.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_node_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_node_keys_key_hash'))
    )


def downgrade() -> None:
    op.drop_table('node_keys')
