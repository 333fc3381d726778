"""agent presence, presence log, shift handovers, event outbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 13:34:08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "bus_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bus_event")),
    )
    with op.batch_alter_table("bus_event", schema=None) as batch_op:
        batch_op.create_index("ix_bus_event_created_at", ["created_at"], unique=False)

    op.create_table(
        "shift_handover",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shift_day", sa.Date(), nullable=False),
        sa.Column("shift_code", sa.String(length=16), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("on_duty_id", sa.Integer(), nullable=True),
        sa.Column("receiving_id", sa.Integer(), nullable=True),
        sa.Column("pending_count", sa.Integer(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["on_duty_id"],
            ["user_account.id"],
            name=op.f("fk_shift_handover_on_duty_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["receiving_id"],
            ["user_account.id"],
            name=op.f("fk_shift_handover_receiving_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shift_handover")),
        sa.UniqueConstraint(
            "shift_day", "shift_code", "team", name=op.f("uq_shift_handover_shift_day_shift_code_team")
        ),
    )
    op.create_table(
        "agent_presence",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("since", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("shift_day", sa.Date(), nullable=True),
        sa.Column("shift_code", sa.String(length=16), nullable=True),
        sa.Column("login_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agent.id"], name=op.f("fk_agent_presence_agent_id_agent"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_agent_presence_call_id_call"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_presence")),
    )
    op.create_table(
        "presence_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("previous", sa.String(length=16), nullable=True),
        sa.Column("at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("login", sa.Boolean(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("shift_day", sa.Date(), nullable=True),
        sa.Column("shift_code", sa.String(length=16), nullable=True),
        sa.Column("by_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agent.id"], name=op.f("fk_presence_log_agent_id_agent"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["by_user_id"],
            ["user_account.id"],
            name=op.f("fk_presence_log_by_user_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_presence_log_call_id_call"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presence_log")),
        sa.UniqueConstraint("key", name=op.f("uq_presence_log_key")),
    )
    with op.batch_alter_table("presence_log", schema=None) as batch_op:
        batch_op.create_index("ix_presence_log_agent_id_at", ["agent_id", "at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("presence_log", schema=None) as batch_op:
        batch_op.drop_index("ix_presence_log_agent_id_at")

    op.drop_table("presence_log")
    op.drop_table("agent_presence")
    op.drop_table("shift_handover")
    with op.batch_alter_table("bus_event", schema=None) as batch_op:
        batch_op.drop_index("ix_bus_event_created_at")

    op.drop_table("bus_event")
