"""case queue and in-app notices

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:33:56.065281
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("due_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_ticket.id"], name=op.f("fk_notice_case_id_case_ticket"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_notice_user_id_user_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice")),
        sa.UniqueConstraint("key", name=op.f("uq_notice_key")),
    )
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.create_index("ix_notice_user_id_read_at", ["user_id", "read_at"], unique=False)

    with op.batch_alter_table("case_ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue_name", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_ticket", schema=None) as batch_op:
        batch_op.drop_column("queue_name")

    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index("ix_notice_user_id_read_at")

    op.drop_table("notice")
