"""AMI call columns: agent interface, hang-up side, transfers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:44:30.494104
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_interface", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hangup_side", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("transfers", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_column("transfers")
        batch_op.drop_column("hangup_side")
        batch_op.drop_column("agent_interface")
