"""cases, audit log, wrap-up columns, department handlers, agent teams

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:26:37.087332
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_audit_log_user_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_log_object", ["object_type", "object_id"], unique=False)

    op.create_table(
        "case_ticket",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("case_type", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("follow_up", sa.String(length=32), nullable=True),
        sa.Column("follow_up_date", sa.Date(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("complexity", sa.String(length=16), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("persons_involved", sa.Text(), nullable=False),
        sa.Column("caller_id", sa.Integer(), nullable=True),
        sa.Column("contact_name", sa.String(length=128), nullable=False),
        sa.Column("contact_e164", sa.String(length=20), nullable=True),
        sa.Column("contact_other", sa.String(length=255), nullable=False),
        sa.Column("department", sa.String(length=32), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("escalation_level", sa.String(length=16), nullable=False),
        sa.Column("solution", sa.Text(), nullable=False),
        sa.Column("remedy", sa.String(length=16), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.Column("repeat_of_id", sa.Integer(), nullable=True),
        sa.Column("is_repeat", sa.Boolean(), nullable=False),
        sa.Column("delayed", sa.Boolean(), nullable=False),
        sa.Column("redispatch_count", sa.Integer(), nullable=False),
        sa.Column("signed_off_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("registered_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_reply_due_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_replied_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution_due_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("promised_reply_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agent.id"], name=op.f("fk_case_ticket_agent_id_agent"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["caller_id"], ["caller.id"], name=op.f("fk_case_ticket_caller_id_caller"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_case_ticket_created_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["user_account.id"],
            name=op.f("fk_case_ticket_owner_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["repeat_of_id"],
            ["case_ticket.id"],
            name=op.f("fk_case_ticket_repeat_of_id_case_ticket"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_ticket")),
        sa.UniqueConstraint("number", name=op.f("uq_case_ticket_number")),
    )
    with op.batch_alter_table("case_ticket", schema=None) as batch_op:
        batch_op.create_index("ix_case_ticket_caller_id_category", ["caller_id", "category"], unique=False)
        batch_op.create_index("ix_case_ticket_registered_at", ["registered_at"], unique=False)
        batch_op.create_index("ix_case_ticket_status", ["status"], unique=False)

    op.create_table(
        "case_attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case_ticket.id"],
            name=op.f("fk_case_attachment_case_id_case_ticket"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["user_account.id"],
            name=op.f("fk_case_attachment_uploaded_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_attachment")),
    )
    with op.batch_alter_table("case_attachment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_attachment_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_call",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_case_call_call_id_call"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_ticket.id"], name=op.f("fk_case_call_case_id_case_ticket"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("case_id", "call_id", name=op.f("pk_case_call")),
    )
    op.create_table(
        "case_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case_ticket.id"],
            name=op.f("fk_case_event_case_id_case_ticket"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_case_event_user_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_event")),
    )
    with op.batch_alter_table("case_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_event_case_id"), ["case_id"], unique=False)

    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("team", sa.String(length=64), nullable=False, server_default=""))

    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wrapup_category", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("wrapup_note", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("wrapped_up_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("wrapped_up_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_call_wrapped_up_by_id_user_account"),
            "user_account",
            ["wrapped_up_by_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("department", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("is_department_head", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("is_department_head")
        batch_op.drop_column("department")

    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_call_wrapped_up_by_id_user_account"), type_="foreignkey")
        batch_op.drop_column("wrapped_up_by_id")
        batch_op.drop_column("wrapped_up_at")
        batch_op.drop_column("wrapup_note")
        batch_op.drop_column("wrapup_category")

    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.drop_column("team")

    with op.batch_alter_table("case_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_event_case_id"))

    op.drop_table("case_event")
    op.drop_table("case_call")
    with op.batch_alter_table("case_attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_attachment_case_id"))

    op.drop_table("case_attachment")
    with op.batch_alter_table("case_ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_case_ticket_status")
        batch_op.drop_index("ix_case_ticket_registered_at")
        batch_op.drop_index("ix_case_ticket_caller_id_category")

    op.drop_table("case_ticket")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_object")
        batch_op.drop_index("ix_audit_log_at")

    op.drop_table("audit_log")
