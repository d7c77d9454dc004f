"""Engine runs: when each engine worked on a goal, so a wall-clock budget spans restarts.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_runs",
        sa.Column("engine", sa.String(200), primary_key=True),
        sa.Column("goal_id", sa.Integer, sa.ForeignKey("goals.id"), primary_key=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("engine_runs")
