"""Indexes for readers that must stay fast on a large store (the dashboard): a goal's
newest start and finish (the cheap marker that says whether anything changed since the
last look) and a goal's trials in id order (paging through them).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_trials_goal_id", "trials", ["goal_id", "id"])
    op.create_index("ix_trials_goal_started", "trials", ["goal_id", "started_at"])
    op.create_index("ix_trials_goal_finished", "trials", ["goal_id", "finished_at"])


def downgrade() -> None:
    for name in ("ix_trials_goal_finished", "ix_trials_goal_started", "ix_trials_goal_id"):
        op.drop_index(name, "trials")
