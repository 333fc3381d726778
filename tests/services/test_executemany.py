"""``db.executemany``: the DB-API's executemany with the columns' own conversions, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import bindparam, select, update

from callcenter.db import Database, executemany, insert_ignoring_duplicates
from callcenter.models import Call, CallEvent

SHANGHAI = timezone(timedelta(hours=8))
AT = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=SHANGHAI)


def _call(db: Database) -> int:
    with db.transaction() as session:
        call = Call(channel="twilio", external_id="CA1", direction="inbound", started_at=AT, created_at=AT)
        session.add(call)
        session.flush()
        return call.id


def test_rows_are_converted_as_the_orm_converts_them_and_duplicates_are_ignored(db: Database) -> None:
    call_id = _call(db)
    rows = [
        {
            "call_id": call_id, "key": f"k{n}", "kind": "ivr.node", "at": AT + timedelta(seconds=n),
            "seq": n, "source": "test", "node": None if n else "welcome",
            "data": {"名字": "张伟", "n": n, "nested": [1, None, "<&>"]}, "recorded_at": AT,
        }
        for n in range(3)
    ]  # fmt: skip
    with db.transaction() as session:
        insert_ignoring_duplicates(session, CallEvent, rows, ["call_id", "key"])
        insert_ignoring_duplicates(session, CallEvent, [{**rows[0], "kind": "again"}], ["call_id", "key"])
    with db.read() as session:
        events = session.execute(select(CallEvent).order_by(CallEvent.seq)).scalars().all()
        assert [(e.key, e.kind, e.at, e.node, e.data) for e in events] == [
            (r["key"], "ivr.node", r["at"].astimezone(UTC), r["node"], r["data"]) for r in rows
        ]
        assert all(e.at.tzinfo is not None for e in events)


def test_an_update_binds_its_where_clause_and_its_values_in_order(db: Database) -> None:
    call_id = _call(db)
    statement = (
        update(Call)
        .where(Call.id == bindparam("call_id"))
        .values(ended_at=bindparam("new_ended"), ivr_path=bindparam("new_path"))
    )
    ended = AT + timedelta(minutes=3)
    with db.transaction() as session:
        executemany(
            session.connection(), statement, [{"call_id": call_id, "new_ended": ended, "new_path": "a>b"}]
        )
    with db.read() as session:
        call = session.get_one(Call, call_id)
        assert (call.ended_at, call.ivr_path) == (ended.astimezone(UTC), "a>b")
