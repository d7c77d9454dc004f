"""Engine runs record why they ended, so that `pursuit status` can tell a goal that
finished from one whose engine was killed.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("engine_runs") as batch:
        batch.add_column(sa.Column("reason", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("engine_runs") as batch:
        batch.drop_column("reason")
