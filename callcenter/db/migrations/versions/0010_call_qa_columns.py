"""call: next_contact_at and recordings_verified, kept by triggers; the QA draw's index

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 16:40:00.000000

Two columns of ``call`` that the QA draw used to derive from a million rows at draw time
(docs/performance.md, "QA sampling") are kept on the row instead, **by the database** — triggers on
``call`` and ``recording`` on both dialects — so every write path (the set-based writer, the AMI
listener, the Twilio callbacks, the recording verifier, the demo seed, test factories, plain SQL)
keeps them right without knowing about them:

* ``next_contact_at``: the ``started_at`` of the next call from the same number (``from_e164``) in
  ``(started_at, id)`` order, NULL for the last one and for calls without a number — exactly
  ``lead(started_at) OVER (PARTITION BY from_e164 ORDER BY started_at, id)``. Inserting a call sets
  its own value from any later call already on record (replays and back-fills arrive out of order)
  and its predecessor's; deleting one, or changing its number or start, fixes the predecessors of
  the old and the new place.
* ``recordings_verified``: the call has at least one recording of kind ``call`` and all of them are
  ``verified``; recomputed for the calls whose recordings are inserted, deleted, or change status,
  kind or call.

Both are independent of settings (the repeat-contact window is applied at draw time). On PostgreSQL
concurrent writers are serialised where they could race: calls by a transaction-scoped advisory lock
on a bucket of the number (1 024 buckets, taken in order), recordings by locking the call rows, each
before the statement that recomputes (which then, under READ COMMITTED, sees what the other writer
committed). SQLite has one writer at a time.

The triggers live only here: the schema must be built by migrations (there is no ``create_all``), and
a later SQLite batch migration that recreates ``call`` or ``recording`` must recreate them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The QA draw's population, read by index only (PostgreSQL; SQLite gets the same partial index
# without the included columns). Fixed-width columns first: reading a row stops short of the text.
DRAW_INDEX_WHERE = "answered_at IS NOT NULL AND agent_id IS NOT NULL AND recordings_verified"
DRAW_INDEX_INCLUDE = ["id", "agent_id", "talk_s", "next_contact_at", "queue_name"]

# --- SQLite: row triggers (they fire once per row, right after it is written) -------------------

# The next call of the call being updated (the outer ``call``) from the same number.
_SQLITE_NEXT = """(
    SELECT d.started_at FROM call AS d
    WHERE d.from_e164 = call.from_e164 AND (d.started_at, d.id) > (call.started_at, call.id)
    ORDER BY d.started_at, d.id LIMIT 1)"""


def _sqlite_before(row: str) -> str:
    """The id of the call just before ``row``'s place (``NEW`` or ``OLD``) among its number's."""
    return f"""(
    SELECT d.id FROM call AS d
    WHERE d.from_e164 = {row}.from_e164 AND (d.started_at, d.id) < ({row}.started_at, {row}.id)
    ORDER BY d.started_at DESC, d.id DESC LIMIT 1)"""  # noqa: S608 - row is NEW or OLD


_SQLITE_VERIFIED = """(
    EXISTS (SELECT 1 FROM recording AS r WHERE r.call_id = call.id AND r.kind = 'call')
    AND NOT EXISTS (SELECT 1 FROM recording AS r
                    WHERE r.call_id = call.id AND r.kind = 'call' AND r.status <> 'verified'))"""

SQLITE_TRIGGERS = {
    "call_next_contact_insert": f"""
CREATE TRIGGER call_next_contact_insert AFTER INSERT ON call
BEGIN
    UPDATE call SET next_contact_at = {_SQLITE_NEXT}
    WHERE id IN (NEW.id, {_sqlite_before("NEW")});
    UPDATE call SET recordings_verified = {_SQLITE_VERIFIED}
    WHERE id = NEW.id AND NEW.recordings_verified;
END""",  # noqa: S608 - constant SQL
    "call_next_contact_update": f"""
CREATE TRIGGER call_next_contact_update AFTER UPDATE OF from_e164, started_at ON call
WHEN OLD.from_e164 IS NOT NEW.from_e164 OR OLD.started_at IS NOT NEW.started_at
BEGIN
    UPDATE call SET next_contact_at = {_SQLITE_NEXT}
    WHERE id IN (NEW.id, {_sqlite_before("NEW")}, {_sqlite_before("OLD")});
END""",  # noqa: S608 - constant SQL
    "call_next_contact_delete": f"""
CREATE TRIGGER call_next_contact_delete AFTER DELETE ON call
BEGIN
    UPDATE call SET next_contact_at = {_SQLITE_NEXT} WHERE id = {_sqlite_before("OLD")};
END""",  # noqa: S608 - constant SQL
    "recording_verified_insert": f"""
CREATE TRIGGER recording_verified_insert AFTER INSERT ON recording
BEGIN
    UPDATE call SET recordings_verified = {_SQLITE_VERIFIED} WHERE id = NEW.call_id;
END""",  # noqa: S608 - constant SQL
    "recording_verified_update": f"""
CREATE TRIGGER recording_verified_update AFTER UPDATE OF status, kind, call_id ON recording
WHEN OLD.status IS NOT NEW.status OR OLD.kind IS NOT NEW.kind OR OLD.call_id IS NOT NEW.call_id
BEGIN
    UPDATE call SET recordings_verified = {_SQLITE_VERIFIED} WHERE id IN (OLD.call_id, NEW.call_id);
END""",  # noqa: S608 - constant SQL
    "recording_verified_delete": f"""
CREATE TRIGGER recording_verified_delete AFTER DELETE ON recording
BEGIN
    UPDATE call SET recordings_verified = {_SQLITE_VERIFIED} WHERE id = OLD.call_id;
END""",  # noqa: S608 - constant SQL
}

# --- PostgreSQL: statement triggers with transition tables for inserts and deletes (one set-based
# statement per batch), row triggers with WHEN for the updates that move a call or a recording ----

PG_FUNCTIONS = {
    # Serialise writers of the same numbers (a bucket of them) until commit; in order, no deadlock
    # between two statements that each lock several buckets.
    "call_lock_numbers(text[])": """
CREATE FUNCTION call_lock_numbers(numbers text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    bucket integer;
BEGIN
    FOR bucket IN
        SELECT DISTINCT hashtext(n) & 1023 FROM unnest(numbers) AS n WHERE n IS NOT NULL ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(1363231044, bucket);  -- 1363231044: 'QA-D', this lock's class
    END LOOP;
END $$""",
    # The call just before a place among its number's calls.
    "call_before(text, timestamptz, integer)": """
CREATE FUNCTION call_before(number text, at timestamptz, call_id integer) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT d.id FROM call d
    WHERE d.from_e164 = number AND d.started_at <= at AND (d.started_at, d.id) < (at, call_id)
    ORDER BY d.started_at DESC, d.id DESC LIMIT 1
$$""",
    # Recompute next_contact_at of these calls (written only where it changes).
    "call_next_contact_refresh(integer[])": """
CREATE FUNCTION call_next_contact_refresh(ids integer[]) RETURNS void LANGUAGE sql AS $$
    UPDATE call c SET next_contact_at = n.next_at
    FROM (
        SELECT a.id,
               (SELECT d.started_at FROM call d
                WHERE d.from_e164 = a.from_e164 AND d.started_at >= a.started_at
                  AND (d.started_at, d.id) > (a.started_at, a.id)
                ORDER BY d.started_at, d.id LIMIT 1) AS next_at
        FROM call a WHERE a.id IN (SELECT DISTINCT unnest(ids))
    ) n
    WHERE c.id = n.id AND c.next_contact_at IS DISTINCT FROM n.next_at
$$""",
    # Recompute recordings_verified of these calls, their rows locked first (in id order).
    "call_recordings_refresh(integer[])": """
CREATE FUNCTION call_recordings_refresh(ids integer[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM call WHERE id IN (SELECT DISTINCT unnest(ids)) ORDER BY id FOR NO KEY UPDATE;
    UPDATE call c SET recordings_verified = v.verified
    FROM (
        SELECT a.id,
               EXISTS (SELECT 1 FROM recording r WHERE r.call_id = a.id AND r.kind = 'call')
               AND NOT EXISTS (SELECT 1 FROM recording r
                               WHERE r.call_id = a.id AND r.kind = 'call' AND r.status <> 'verified')
               AS verified
        FROM call a WHERE a.id IN (SELECT DISTINCT unnest(ids))
    ) v
    WHERE c.id = v.id AND c.recordings_verified IS DISTINCT FROM v.verified;
END $$""",
    "call_after_insert()": """
CREATE FUNCTION call_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM call_lock_numbers(ARRAY(SELECT from_e164 FROM new_calls WHERE from_e164 IS NOT NULL));
    -- after the lock: a fresh snapshot sees the calls other writers of these numbers committed
    PERFORM call_next_contact_refresh(ARRAY(
        SELECT id FROM new_calls WHERE from_e164 IS NOT NULL OR next_contact_at IS NOT NULL
        UNION
        SELECT call_before(from_e164, started_at, id) FROM new_calls WHERE from_e164 IS NOT NULL));
    -- a new call has no recordings yet: only a row written with true needs a look
    PERFORM call_recordings_refresh(ARRAY(SELECT id FROM new_calls WHERE recordings_verified));
    RETURN NULL;
END $$""",
    "call_after_delete()": """
CREATE FUNCTION call_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM call_lock_numbers(ARRAY(SELECT from_e164 FROM old_calls WHERE from_e164 IS NOT NULL));
    PERFORM call_next_contact_refresh(ARRAY(
        SELECT call_before(from_e164, started_at, id) FROM old_calls WHERE from_e164 IS NOT NULL));
    RETURN NULL;
END $$""",
    "call_after_move()": """
CREATE FUNCTION call_after_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM call_lock_numbers(ARRAY[OLD.from_e164, NEW.from_e164]);
    PERFORM call_next_contact_refresh(ARRAY[
        NEW.id,
        call_before(NEW.from_e164, NEW.started_at, NEW.id),
        call_before(OLD.from_e164, OLD.started_at, OLD.id)]);
    RETURN NULL;
END $$""",
    "recording_after_insert()": """
CREATE FUNCTION recording_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM call_recordings_refresh(ARRAY(SELECT call_id FROM new_recordings));
    RETURN NULL;
END $$""",
    "recording_after_delete()": """
CREATE FUNCTION recording_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM call_recordings_refresh(ARRAY(SELECT call_id FROM old_recordings));
    RETURN NULL;
END $$""",
    "recording_after_change()": """
CREATE FUNCTION recording_after_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM call_recordings_refresh(ARRAY[OLD.call_id, NEW.call_id]);
    RETURN NULL;
END $$""",
    "recording_after_truncate()": """
CREATE FUNCTION recording_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE call SET recordings_verified = false WHERE recordings_verified;
    RETURN NULL;
END $$""",
}

PG_TRIGGERS = {
    "call_next_contact_insert ON call": """
CREATE TRIGGER call_next_contact_insert AFTER INSERT ON call
REFERENCING NEW TABLE AS new_calls FOR EACH STATEMENT EXECUTE FUNCTION call_after_insert()""",
    "call_next_contact_delete ON call": """
CREATE TRIGGER call_next_contact_delete AFTER DELETE ON call
REFERENCING OLD TABLE AS old_calls FOR EACH STATEMENT EXECUTE FUNCTION call_after_delete()""",
    "call_next_contact_update ON call": """
CREATE TRIGGER call_next_contact_update AFTER UPDATE OF from_e164, started_at ON call FOR EACH ROW
WHEN (OLD.from_e164 IS DISTINCT FROM NEW.from_e164 OR OLD.started_at IS DISTINCT FROM NEW.started_at)
EXECUTE FUNCTION call_after_move()""",
    "recording_verified_insert ON recording": """
CREATE TRIGGER recording_verified_insert AFTER INSERT ON recording
REFERENCING NEW TABLE AS new_recordings FOR EACH STATEMENT EXECUTE FUNCTION recording_after_insert()""",
    "recording_verified_delete ON recording": """
CREATE TRIGGER recording_verified_delete AFTER DELETE ON recording
REFERENCING OLD TABLE AS old_recordings FOR EACH STATEMENT EXECUTE FUNCTION recording_after_delete()""",
    "recording_verified_update ON recording": """
CREATE TRIGGER recording_verified_update AFTER UPDATE OF status, kind, call_id ON recording FOR EACH ROW
WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.kind IS DISTINCT FROM NEW.kind
      OR OLD.call_id IS DISTINCT FROM NEW.call_id)
EXECUTE FUNCTION recording_after_change()""",
    "recording_verified_truncate ON recording": """
CREATE TRIGGER recording_verified_truncate AFTER TRUNCATE ON recording
FOR EACH STATEMENT EXECUTE FUNCTION recording_after_truncate()""",
}

# Backfill (both dialects; the index on (from_e164, started_at, id) makes each look-up one probe).
BACKFILL = [
    """
UPDATE call SET next_contact_at = (
    SELECT d.started_at FROM call AS d
    WHERE d.from_e164 = call.from_e164 AND d.started_at >= call.started_at
      AND (d.started_at, d.id) > (call.started_at, call.id)
    ORDER BY d.started_at, d.id LIMIT 1)
WHERE from_e164 IS NOT NULL""",
    """
UPDATE call SET recordings_verified = true
WHERE EXISTS (SELECT 1 FROM recording AS r WHERE r.call_id = call.id AND r.kind = 'call')
  AND NOT EXISTS (SELECT 1 FROM recording AS r
                  WHERE r.call_id = call.id AND r.kind = 'call' AND r.status <> 'verified')""",
]


def upgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("next_contact_at", callcenter.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("recordings_verified", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        # the triggers' look-ups: a number's calls in (started_at, id) order
        batch_op.drop_index("ix_call_from_e164")
        batch_op.create_index("ix_call_from_started", ["from_e164", "started_at", "id"], unique=False)
    op.create_index(
        "ix_call_qa_draw",
        "call",
        ["started_at"],
        unique=False,
        postgresql_include=DRAW_INDEX_INCLUDE,
        postgresql_where=sa.text(DRAW_INDEX_WHERE),
        sqlite_where=sa.text(DRAW_INDEX_WHERE),
    )
    for statement in BACKFILL:
        op.execute(statement)
    if op.get_bind().dialect.name == "postgresql":
        for ddl in PG_FUNCTIONS.values():
            op.execute(ddl)
        for ddl in PG_TRIGGERS.values():
            op.execute(ddl)
    else:
        for ddl in SQLITE_TRIGGERS.values():
            op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for signature in reversed(PG_FUNCTIONS):
            op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_call_qa_draw", table_name="call")
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_index("ix_call_from_started")
        batch_op.create_index("ix_call_from_e164", ["from_e164"], unique=False)
        batch_op.drop_column("recordings_verified")
        batch_op.drop_column("next_contact_at")
