"""recording: check_attempts and next_check_at (invalid files are looked at again, a bounded number of times)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:00:00.000000

Plain ``ALTER TABLE … ADD COLUMN`` on both dialects (no SQLite batch copy of ``recording``, which would
drop the triggers of migration 0010). Recordings already marked ``invalid`` by the Asterisk verifier
are due for one more look at once: before this revision a file read while its call was still going
(an unfinished WAV header) was marked invalid for good.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECHECK_WHERE = "next_check_at IS NOT NULL"


def upgrade() -> None:
    op.add_column("recording", sa.Column("check_attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        "recording",
        sa.Column("next_check_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_recording_next_check_at",
        "recording",
        ["next_check_at"],
        unique=False,
        postgresql_where=sa.text(RECHECK_WHERE),
        sqlite_where=sa.text(RECHECK_WHERE),
    )
    op.execute(
        "UPDATE recording SET check_attempts = 1 "
        "WHERE source = 'asterisk' AND status <> 'pending' AND verified_at IS NOT NULL"
    )
    op.execute(
        "UPDATE recording SET next_check_at = verified_at "
        "WHERE source = 'asterisk' AND status = 'invalid' AND verified_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_recording_next_check_at", table_name="recording")
    # plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch copy would drop migration 0010's triggers
    op.drop_column("recording", "next_check_at")
    op.drop_column("recording", "check_attempts")
