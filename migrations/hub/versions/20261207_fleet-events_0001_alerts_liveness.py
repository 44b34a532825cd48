"""fleet events: the hub's copy of plants' monitoring alerts; node liveness episodes

Revision ID: fleet_events_0001
Revises: retrain_hub_0001
Create Date: 2026-12-07 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'fleet_events_0001'
down_revision: str | None = 'retrain_hub_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('hub_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plant_id', sa.String(length=64), nullable=False),
    sa.Column('model_name', sa.String(length=64), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('raised_report_id', sa.String(length=64), nullable=False),
    sa.Column('raised_window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cleared_report_id', sa.String(length=64), nullable=True),
    sa.Column('cleared_window_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(
        ['plant_id'], ['plants.id'], name=op.f('fk_hub_alerts_plant_id_plants')
    ),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_alerts')),
    sa.UniqueConstraint(
        'plant_id', 'model_name', 'model_version', 'key',
        name=op.f('uq_hub_alerts_plant_id_model_name_model_version_key'),
    ),
    )
    op.create_table('plant_liveness',
    sa.Column('plant_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('stale_since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recovered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(
        ['plant_id'], ['plants.id'], name=op.f('fk_plant_liveness_plant_id_plants')
    ),
    sa.PrimaryKeyConstraint('plant_id', name=op.f('pk_plant_liveness')),
    )


def downgrade() -> None:
    op.drop_table('plant_liveness')
    op.drop_table('hub_alerts')
