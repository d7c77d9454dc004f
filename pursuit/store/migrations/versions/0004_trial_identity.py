"""An index on a trial's identity (goal, dials, seed, method): a seed of a configuration is
created once, and the store looks for it on every new trial.

Not unique: stores written before this rule may hold a seed twice; claims count it once.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_trials_identity", "trials", ["goal_id", "dials", "seed", "method_id"])


def downgrade() -> None:
    op.drop_index("ix_trials_identity", "trials")
