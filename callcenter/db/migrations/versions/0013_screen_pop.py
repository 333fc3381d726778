"""screen_pop: every published screen-pop and its delivery; bus_event ids never reused (SQLite)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _bus_event(name: str, *, autoincrement: bool) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sqlite_autoincrement=autoincrement,
    )


def _rebuild_bus_event(*, autoincrement: bool) -> None:
    """SQLite reuses the ids of deleted rows unless the table is AUTOINCREMENT; PostgreSQL's sequence
    never does. The rows (ten minutes of events at most) are copied, so ids go on from the highest."""
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index("ix_bus_event_created_at", table_name="bus_event")
    op.rename_table("bus_event", "bus_event_old")
    _bus_event("bus_event", autoincrement=autoincrement)
    op.execute(
        "INSERT INTO bus_event (id, topic, payload, created_at) "
        "SELECT id, topic, payload, created_at FROM bus_event_old ORDER BY id"
    )
    op.drop_table("bus_event_old")
    op.create_index("ix_bus_event_created_at", "bus_event", ["created_at"], unique=False)


def upgrade() -> None:
    _rebuild_bus_event(autoincrement=True)
    op.create_table(
        "screen_pop",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("call_ref", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("published_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("missed_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agent.id"], name=op.f("fk_screen_pop_agent_id_agent"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_screen_pop_call_id_call"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screen_pop")),
        sa.UniqueConstraint("event_id", name=op.f("uq_screen_pop_event_id")),
    )
    op.create_index(
        "ix_screen_pop_agent_id_published_at", "screen_pop", ["agent_id", "published_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_screen_pop_agent_id_published_at", table_name="screen_pop")
    op.drop_table("screen_pop")
    _rebuild_bus_event(autoincrement=False)
