"""plant events by kind: the inventory's newest serving confirmations and alerts by index

Revision ID: fleet_inv_0001
Revises: dash_scale_0002
Create Date: 2026-12-08 00:10:00

* ``plant_events`` (kind, seq): the inventory reads the newest ``rollout.serving`` and
  ``alert.*`` events of the fleet; with the kind as a range (``kind >= 'alert.' AND kind <
  'alert/'``) that is an index range instead of a scan of every event the fleet ever sent.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "fleet_inv_0001"
down_revision: str | None = "dash_scale_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_plant_events_kind_seq", "plant_events", ["kind", "seq"])


def downgrade() -> None:
    op.drop_index("ix_plant_events_kind_seq", table_name="plant_events")
