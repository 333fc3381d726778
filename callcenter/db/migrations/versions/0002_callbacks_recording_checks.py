"""callback tasks, recording kind and verification

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:36:26.458203
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "callback_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("number_raw", sa.String(length=64), nullable=False),
        sa.Column("number_e164", sa.String(length=20), nullable=True),
        sa.Column("caller_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("queue_name", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("due_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_callback_task_call_id_call"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["caller_id"], ["caller.id"], name=op.f("fk_callback_task_caller_id_caller"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_task")),
        sa.UniqueConstraint("key", name=op.f("uq_callback_task_key")),
    )
    with op.batch_alter_table("callback_task", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_callback_task_call_id"), ["call_id"], unique=False)
        batch_op.create_index("ix_callback_task_status_due_at", ["status", "due_at"], unique=False)

    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="call"))
        batch_op.add_column(sa.Column("problem", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("verified_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.drop_column("verified_at")
        batch_op.drop_column("problem")
        batch_op.drop_column("kind")

    with op.batch_alter_table("callback_task", schema=None) as batch_op:
        batch_op.drop_index("ix_callback_task_status_due_at")
        batch_op.drop_index(batch_op.f("ix_callback_task_call_id"))

    op.drop_table("callback_task")
