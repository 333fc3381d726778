"""missed_ring: agents the queue rang in vain (AMI AgentRingNoAnswer), against the agent and the call

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "missed_ring",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("interface", sa.String(length=64), nullable=False),
        sa.Column("member", sa.String(length=64), nullable=False),
        sa.Column("queue_name", sa.String(length=64), nullable=True),
        sa.Column("ring_s", sa.Float(), nullable=True),
        sa.Column("at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agent.id"], name=op.f("fk_missed_ring_agent_id_agent"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_missed_ring_call_id_call"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_missed_ring")),
        sa.UniqueConstraint("key", name=op.f("uq_missed_ring_key")),
    )
    with op.batch_alter_table("missed_ring", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_missed_ring_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_missed_ring_call_id"), ["call_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("missed_ring", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_missed_ring_call_id"))
        batch_op.drop_index(batch_op.f("ix_missed_ring_agent_id"))
    op.drop_table("missed_ring")
