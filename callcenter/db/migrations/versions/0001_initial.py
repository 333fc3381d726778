"""contact record, callers, agents, queues, users

Revision ID: 0001
Revises:
Create Date: 2026-11-23 09:36:27.468025
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "caller",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("region", sa.String(length=128), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caller")),
        sa.UniqueConstraint("e164", name=op.f("uq_caller_e164")),
    )
    op.create_table(
        "queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title_zh", sa.String(length=64), nullable=False),
        sa.Column("title_en", sa.String(length=64), nullable=False),
        sa.Column("created_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue")),
        sa.UniqueConstraint("name", name=op.f("uq_queue_name")),
    )
    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=True),
        sa.Column("created_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account")),
        sa.UniqueConstraint("username", name=op.f("uq_user_account_username")),
    )
    op.create_table(
        "agent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("extension", sa.String(length=32), nullable=True),
        sa.Column("twilio_identity", sa.String(length=64), nullable=True),
        sa.Column("skill_level", sa.String(length=8), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_agent_user_id_user_account"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent")),
        sa.UniqueConstraint("extension", name=op.f("uq_agent_extension")),
        sa.UniqueConstraint("twilio_identity", name=op.f("uq_agent_twilio_identity")),
        sa.UniqueConstraint("user_id", name=op.f("uq_agent_user_id")),
    )
    op.create_table(
        "user_role",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_user_role_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "role", name=op.f("pk_user_role")),
    )
    op.create_table(
        "agent_queue",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agent.id"], name=op.f("fk_agent_queue_agent_id_agent"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queue.id"], name=op.f("fk_agent_queue_queue_id_queue"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", "queue_id", name=op.f("pk_agent_queue")),
    )
    op.create_table(
        "call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("from_raw", sa.String(length=64), nullable=False),
        sa.Column("from_e164", sa.String(length=20), nullable=True),
        sa.Column("from_valid", sa.Boolean(), nullable=False),
        sa.Column("to_raw", sa.String(length=64), nullable=False),
        sa.Column("to_e164", sa.String(length=20), nullable=True),
        sa.Column("caller_name", sa.String(length=128), nullable=False),
        sa.Column("caller_id", sa.Integer(), nullable=True),
        sa.Column("created_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ivr_path", sa.JSON(), nullable=False),
        sa.Column("ivr_branch", sa.String(length=32), nullable=True),
        sa.Column("last_node", sa.String(length=64), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("queue_name", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("wait_s", sa.Integer(), nullable=True),
        sa.Column("talk_s", sa.Integer(), nullable=True),
        sa.Column("disposition", sa.String(length=32), nullable=False),
        sa.Column("end_reason", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agent.id"], name=op.f("fk_call_agent_id_agent"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["caller_id"], ["caller.id"], name=op.f("fk_call_caller_id_caller"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queue.id"], name=op.f("fk_call_queue_id_queue"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call")),
        sa.UniqueConstraint("channel", "external_id", name=op.f("uq_call_channel_external_id")),
    )
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.create_index("ix_call_from_e164", ["from_e164"], unique=False)
        batch_op.create_index("ix_call_started_at", ["started_at"], unique=False)

    op.create_table(
        "call_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("recorded_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_call_event_call_id_call"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_event")),
        sa.UniqueConstraint("call_id", "key", name=op.f("uq_call_event_call_id_key")),
    )
    op.create_table(
        "recording",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("started_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_recording_call_id_call"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording")),
        sa.UniqueConstraint("source", "external_id", name=op.f("uq_recording_source_external_id")),
    )
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recording_call_id"), ["call_id"], unique=False)

    # APScheduler's SQLAlchemyJobStore table (same shape as apscheduler.jobstores.sqlalchemy),
    # created here so that every table comes from a migration.
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apscheduler_jobs")),
    )
    op.create_index("ix_apscheduler_jobs_next_run_time", "apscheduler_jobs", ["next_run_time"])


def downgrade() -> None:
    op.drop_index("ix_apscheduler_jobs_next_run_time", table_name="apscheduler_jobs")
    op.drop_table("apscheduler_jobs")
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_call_id"))

    op.drop_table("recording")
    op.drop_table("call_event")
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_index("ix_call_started_at")
        batch_op.drop_index("ix_call_from_e164")

    op.drop_table("call")
    op.drop_table("agent_queue")
    op.drop_table("user_role")
    op.drop_table("agent")
    op.drop_table("user_account")
    op.drop_table("queue")
    op.drop_table("caller")
