"""Curve steps as 64-bit integers: a curve may be logged by tokens seen, past 2**31.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite's integers are 64-bit already; its batch mode copies the table to change it.
    with op.batch_alter_table("curve_points") as batch:
        batch.alter_column("step", type_=sa.BigInteger, existing_type=sa.Integer,
                           existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("curve_points") as batch:
        batch.alter_column("step", type_=sa.Integer, existing_type=sa.BigInteger,
                           existing_nullable=False)
