"""login throttle, call search indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 13:33:59.589455
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_failure_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_login_throttle")),
    )
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.create_index("ix_call_agent_started", ["agent_id", "started_at"], unique=False)
        batch_op.create_index("ix_call_caller_started", ["caller_id", "started_at"], unique=False)
        batch_op.create_index("ix_call_queue_started", ["queue_id", "started_at"], unique=False)
        batch_op.create_index("ix_call_to_e164", ["to_e164"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_index("ix_call_to_e164")
        batch_op.drop_index("ix_call_queue_started")
        batch_op.drop_index("ix_call_caller_started")
        batch_op.drop_index("ix_call_agent_started")

    op.drop_table("login_throttle")
