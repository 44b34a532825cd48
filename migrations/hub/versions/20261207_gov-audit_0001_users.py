"""users: people who hold tokens and sign records; every existing token gets one user

Revision ID: gov_audit_0001
Revises: 0004
Create Date: 2026-12-07 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'gov_audit_0001'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_tokens = sa.table(
    'api_tokens',
    sa.column('id', sa.Integer()),
    sa.column('user_id', sa.Integer()),
    sa.column('role', sa.String()),
    sa.column('plant_id', sa.String()),
    sa.column('name', sa.String()),
    sa.column('created_at', sa.DateTime(timezone=True)),
)
_users = sa.table(
    'users',
    sa.column('id', sa.Integer()),
    sa.column('username', sa.String()),
    sa.column('printed_name', sa.String()),
    sa.column('role', sa.String()),
    sa.column('plant_id', sa.String()),
    sa.column('created_at', sa.DateTime(timezone=True)),
    sa.column('created_by', sa.String()),
)


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('printed_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('plant_id', sa.String(length=64), nullable=True),
    sa.Column('signing_secret_hash', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['plant_id'], ['plants.id'], name=op.f('fk_users_plant_id_plants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))

    # One user per existing token, named after it: the token keeps working, now owned.
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_tokens.c.id, _tokens.c.role, _tokens.c.plant_id, _tokens.c.name,
                  _tokens.c.created_at).order_by(_tokens.c.id)
    ).all()
    for token_id, role, plant_id, name, created_at in rows:
        user_id = conn.execute(
            sa.insert(_users).values(
                username=f'token-{token_id}',
                printed_name=(name or f'token {token_id}')[:200],
                role=role,
                plant_id=plant_id,
                created_at=created_at,
                created_by='migration:gov_audit_0001',
            ).returning(_users.c.id)
        ).scalar_one()
        conn.execute(
            sa.update(_tokens).where(_tokens.c.id == token_id).values(user_id=user_id)
        )

    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.alter_column('user_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_api_tokens_user_id_users'), 'users', ['user_id'], ['id']
        )


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_api_tokens_user_id_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))
        batch_op.drop_column('user_id')
    op.drop_table('users')
