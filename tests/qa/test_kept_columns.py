"""call.next_contact_at and call.recordings_verified are kept by the database (migration 0010):
after calls arrive out of order, one by one and several per statement, are deleted, or change
number or start, and after recordings come, change and go, they equal their derivation."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from callcenter.db import Database, UTCDateTime
from callcenter.models import Call, Recording
from tests.conftest import _truncate

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NUMBERS = ["+8613800000001", "+8613800000002", "+8613800000003", None]


def _call(n: int, number: str | None, start: datetime) -> dict[str, Any]:
    return {
        "channel": "asterisk",
        "external_id": f"kept.{n}",
        "from_raw": number or "anonymous",
        "from_e164": number,
        "created_at": start,
        "started_at": start,
        "disposition": "completed",
    }


def _derived_next(session: Session) -> dict[int, datetime | None]:
    following = (
        func.lead(Call.started_at, type_=UTCDateTime())
        .over(partition_by=Call.from_e164, order_by=(Call.started_at, Call.id))
        .label("next_at")
    )
    rows = session.execute(select(Call.id, Call.from_e164, following)).all()
    return {row.id: (row.next_at if row.from_e164 is not None else None) for row in rows}


def _kept_next(session: Session) -> dict[int, datetime | None]:
    return dict(session.execute(select(Call.id, Call.next_contact_at)).tuples().all())


def assert_next_contacts_derived(db: Database) -> dict[int, datetime | None]:
    with db.read() as s:
        kept, derived = _kept_next(s), _derived_next(s)
    assert kept == derived
    return kept


def test_next_contact_at_follows_inserts_in_any_order_deletes_and_moves(db: Database) -> None:
    rng = random.Random(20261123)
    # 60 calls over 4 numbers (one of them none), some starting at the same instant
    calls = [_call(n, rng.choice(NUMBERS), T0 + timedelta(minutes=rng.randrange(40))) for n in range(60)]
    rng.shuffle(calls)
    with db.transaction() as s:  # one at a time
        for row in calls[:20]:
            s.execute(insert(Call), [row])
    assert_next_contacts_derived(db)
    with db.transaction() as s:  # several in one statement (PostgreSQL: one statement trigger)
        s.execute(insert(Call).values(calls[20:45]))
    assert_next_contacts_derived(db)
    with db.transaction() as s:  # ORM objects, flushed together
        s.add_all(Call(**row) for row in calls[45:])
    kept = assert_next_contacts_derived(db)
    assert sum(value is not None for value in kept.values()) > 30

    with db.read() as s:
        ids = sorted(s.execute(select(Call.id)).scalars())
    with db.transaction() as s:  # the last, a middle and a first call of their numbers go
        s.execute(delete(Call).where(Call.id.in_(ids[::7])))
    assert_next_contacts_derived(db)
    with db.transaction() as s:
        s.execute(delete(Call).where(Call.id == ids[1]))
    assert_next_contacts_derived(db)

    with db.transaction() as s:  # a start moves earlier, another later
        s.execute(update(Call).where(Call.id == ids[2]).values(started_at=T0 - timedelta(hours=1)))
        s.execute(update(Call).where(Call.id == ids[3]).values(started_at=T0 + timedelta(hours=5)))
    assert_next_contacts_derived(db)
    with db.transaction() as s:  # a number learnt later, one changed, one lost; several per statement
        s.execute(
            update(Call)
            .where(Call.id.in_(ids[4:10]))
            .values(from_e164=NUMBERS[0], started_at=T0 + timedelta(minutes=17))  # ties: id decides
        )
        s.execute(update(Call).where(Call.id == ids[10]).values(from_e164=None))
    assert_next_contacts_derived(db)
    with db.transaction() as s:  # an update that changes neither leaves everything as it was
        s.execute(update(Call).where(Call.id == ids[11]).values(started_at=Call.started_at))
    assert_next_contacts_derived(db)


def test_a_call_written_with_wrong_kept_values_is_corrected(db: Database) -> None:
    with db.transaction() as s:
        s.execute(insert(Call), [_call(1, NUMBERS[0], T0 + timedelta(hours=1))])
        wrong = {**_call(2, NUMBERS[0], T0), "next_contact_at": T0, "recordings_verified": True}
        s.execute(insert(Call), [wrong])
        s.execute(insert(Call), [{**_call(3, None, T0), "next_contact_at": T0}])
    assert_next_contacts_derived(db)
    with db.read() as s:
        assert not any(s.execute(select(Call.recordings_verified)).scalars())


def _derived_verified(session: Session) -> dict[int, bool]:
    recordings = session.execute(select(Recording.call_id, Recording.kind, Recording.status)).all()
    result = {call_id: False for call_id in session.execute(select(Call.id)).scalars()}
    for call_id in result:
        mine = [r.status for r in recordings if r.call_id == call_id and r.kind == "call"]
        result[call_id] = bool(mine) and all(status == "verified" for status in mine)
    return result


def assert_verified_derived(db: Database) -> dict[int, bool]:
    with db.read() as s:
        kept = {id_: bool(v) for id_, v in s.execute(select(Call.id, Call.recordings_verified)).tuples()}
        derived = _derived_verified(s)
    assert kept == derived
    return kept


def _recording(call_id: int, n: int, status: str, kind: str = "call") -> dict[str, Any]:
    return {
        "call_id": call_id,
        "source": "asterisk",
        "external_id": f"kept-{n}.wav",
        "kind": kind,
        "uri": f"kept-{n}.wav",
        "status": status,
        "created_at": T0,
    }


def test_recordings_verified_follows_recording_inserts_changes_and_deletes(db: Database) -> None:
    with db.transaction() as s:
        s.execute(
            insert(Call).values([_call(n, NUMBERS[n % 4], T0 + timedelta(minutes=n)) for n in range(6)])
        )
        a, b, c, d, e, f = s.execute(select(Call.id).order_by(Call.id)).scalars()
    assert set(assert_verified_derived(db).values()) == {False}  # no recordings, not verified

    with db.transaction() as s:  # one per statement, then several per statement
        s.execute(insert(Recording), [_recording(a, 1, "verified")])
        s.execute(insert(Recording), [_recording(b, 2, "pending")])
        s.execute(
            insert(Recording).values(
                [
                    _recording(c, 3, "verified"),
                    _recording(c, 4, "verified"),
                    _recording(d, 5, "verified"),
                    _recording(d, 6, "missing"),
                    _recording(e, 7, "verified", kind="voicemail"),
                    _recording(f, 8, "verified"),
                    _recording(f, 9, "pending", kind="voicemail"),  # not a call recording
                ]
            )
        )
    kept = assert_verified_derived(db)
    assert [kept[x] for x in (a, b, c, d, e, f)] == [True, False, True, False, False, True]

    with db.transaction() as s:
        ids = {r.external_id: r.id for r in s.execute(select(Recording)).scalars()}
        s.execute(update(Recording).where(Recording.id == ids["kept-2.wav"]).values(status="verified"))
        s.execute(update(Recording).where(Recording.id == ids["kept-4.wav"]).values(status="missing"))
        s.execute(update(Recording).where(Recording.id == ids["kept-7.wav"]).values(kind="call"))
        s.execute(update(Recording).where(Recording.id == ids["kept-9.wav"]).values(kind="call"))
    kept = assert_verified_derived(db)
    assert [kept[x] for x in (a, b, c, d, e, f)] == [True, True, False, False, True, False]

    with db.transaction() as s:  # a recording moved to another call, the ORM changing a status
        s.execute(update(Recording).where(Recording.id == ids["kept-6.wav"]).values(call_id=a))
        recording = s.get(Recording, ids["kept-9.wav"])
        assert recording is not None
        recording.status = "verified"
    kept = assert_verified_derived(db)
    assert [kept[x] for x in (a, b, c, d, e, f)] == [False, True, False, True, True, True]

    with db.transaction() as s:  # deletes: one, then several in one statement
        s.execute(delete(Recording).where(Recording.id == ids["kept-6.wav"]))
        s.execute(delete(Recording).where(Recording.id.in_([ids["kept-5.wav"], ids["kept-4.wav"]])))
    kept = assert_verified_derived(db)
    assert [kept[x] for x in (a, b, c, d, e, f)] == [True, True, True, False, True, True]

    with db.transaction() as s:  # a call deleted with its recordings (cascade)
        s.execute(delete(Call).where(Call.id == c))
    assert c not in assert_verified_derived(db)


@pytest.mark.postgresql
@pytest.mark.parametrize("later_first", [True, False])
def test_concurrent_writers_of_one_number_are_serialised(
    postgresql_database: Database, later_first: bool
) -> None:
    """Two transactions insert calls of one number at once: the second waits for the first (the
    advisory lock on the number's bucket) and then sees its call, so both columns end right."""
    db = postgresql_database
    _truncate(db)
    with db.transaction() as s:
        s.execute(insert(Call), [_call(0, NUMBERS[0], T0)])
    first, second = (T0 + timedelta(hours=2), T0 + timedelta(hours=1))
    if not later_first:
        first, second = second, first
    one, two = db.sessions(), db.sessions()
    try:
        one.begin()
        one.execute(insert(Call), [_call(1, NUMBERS[0], first)])
        finished = threading.Event()

        def other() -> None:
            two.begin()
            two.execute(insert(Call), [_call(2, NUMBERS[0], second)])
            finished.set()
            two.commit()

        thread = threading.Thread(target=other)
        thread.start()
        assert not finished.wait(0.5)  # held until the first commits
        one.commit()
        thread.join(10)
        assert finished.is_set()
    finally:
        one.close()
        two.close()
    kept = assert_next_contacts_derived(db)
    assert sum(value is not None for value in kept.values()) == 2
    _truncate(db)
