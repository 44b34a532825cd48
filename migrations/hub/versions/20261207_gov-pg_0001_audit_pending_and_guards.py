"""audit_pending (entries awaiting the sealer) and append-only triggers on audit_entries

On PostgreSQL writers insert into audit_pending without the chain lock and a sealer moves
the entries onto the chain. On both databases a trigger refuses UPDATE and DELETE (and on
PostgreSQL TRUNCATE) of audit_entries: only someone who can drop triggers can still edit
the table, and the hash chain is what catches them.

Revision ID: gov_pg_0001
Revises: fleet_events_0001
Create Date: 2026-12-07 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'gov_pg_0001'
down_revision: str | None = 'fleet_events_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_FUNCTION = """
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.create_table('audit_pending',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('before_json', sa.Text(), nullable=True),
    sa.Column('after_json', sa.Text(), nullable=True),
    sa.Column('reason', sa.String(length=2000), nullable=True),
    sa.Column('flags_json', sa.String(length=500), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_pending'))
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_PG_FUNCTION)
        op.execute(
            'CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries '
            'FOR EACH ROW EXECUTE FUNCTION audit_append_only()'
        )
        op.execute(
            'CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries '
            'FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()'
        )
        # Pending entries are deleted by the sealer once chained, but never changed.
        op.execute(
            'CREATE TRIGGER audit_pending_no_update BEFORE UPDATE ON audit_pending '
            'FOR EACH ROW EXECUTE FUNCTION audit_append_only()'
        )
    else:
        for verb in ('update', 'delete'):
            op.execute(
                f'CREATE TRIGGER audit_entries_no_{verb} BEFORE {verb.upper()} ON audit_entries '
                f"BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: {verb.upper()} "
                "refused'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER audit_pending_no_update ON audit_pending')
        op.execute('DROP TRIGGER audit_entries_no_truncate ON audit_entries')
        op.execute('DROP TRIGGER audit_entries_append_only ON audit_entries')
        op.execute('DROP FUNCTION audit_append_only()')
    else:
        op.execute('DROP TRIGGER audit_entries_no_update')
        op.execute('DROP TRIGGER audit_entries_no_delete')
    op.drop_table('audit_pending')
