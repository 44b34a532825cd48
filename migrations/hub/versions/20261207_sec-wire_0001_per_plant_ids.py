"""per-plant ids: report and event ids are unique per plant, not across the hub

Revision ID: sec_wire_0001
Revises: gov_promotions_0001
Create Date: 2026-12-07 01:00:00.000000

Existing rows are kept: ids that were unique across the hub are unique per plant too. The
downgrade restores hub-wide uniqueness and fails if two plants have since used one id.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "sec_wire_0001"
down_revision: str | None = "gov_promotions_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("metrics_reports", schema=None) as batch_op:
        batch_op.drop_constraint("uq_metrics_reports_report_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_metrics_reports_plant_id_report_id", ["plant_id", "report_id"]
        )
    with op.batch_alter_table("plant_events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_plant_events_event_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_plant_events_plant_id_event_id", ["plant_id", "event_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("plant_events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_plant_events_plant_id_event_id", type_="unique")
        batch_op.create_unique_constraint("uq_plant_events_event_id", ["event_id"])
    with op.batch_alter_table("metrics_reports", schema=None) as batch_op:
        batch_op.drop_constraint("uq_metrics_reports_plant_id_report_id", type_="unique")
        batch_op.create_unique_constraint("uq_metrics_reports_report_id", ["report_id"])
