"""``UTCDateTime``: aware datetimes in, the same instant out (UTC), on both databases.

On SQLite the column is text; this type writes it in one step (``isoformat``) where SQLAlchemy's
``DATETIME`` formats it field by field. Both must give exactly the same text, or rows written before
and after would not compare (SQLite compares the strings) and the triggers' values would not match.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite

from callcenter.db import Database
from callcenter.db.base import UTCDateTime
from callcenter.models import Call

SHANGHAI = timezone(timedelta(hours=8))
MOMENTS = [
    datetime(2026, 12, 2, 12, 20, 5, 253913, tzinfo=SHANGHAI),
    datetime(2026, 12, 2, 4, 20, 5, tzinfo=UTC),  # no microseconds: still written, as DATETIME does
    datetime(2027, 1, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5))),
    datetime(999, 3, 4, 5, 6, 7, 8, tzinfo=UTC),  # a short year is zero-padded by both
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_sqlite_text_is_sqlalchemys_datetime_text_of_the_utc_instant(moment: datetime) -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    theirs = sqlite.DATETIME().bind_processor(dialect)
    assert ours is not None and theirs is not None
    assert ours(moment) == theirs(moment.astimezone(UTC).replace(tzinfo=None))
    assert ours(None) is None


def test_naive_and_non_datetime_values_are_refused_on_both_dialects() -> None:
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        bind = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        assert bind is not None
        with pytest.raises(ValueError, match="aware datetime"):
            bind(datetime(2026, 12, 2, 4, 20))
        with pytest.raises(ValueError, match="aware datetime"):
            bind("2026-12-02 04:20:00")


def test_aware_values_come_back_as_the_same_instant_in_utc(db: Database) -> None:
    with db.transaction() as session:
        for number, moment in enumerate(MOMENTS):
            session.add(
                Call(channel="test", external_id=f"c{number}", direction="inbound", started_at=moment,
                     created_at=moment)
            )  # fmt: skip
    with db.read() as session:
        rows = session.execute(select(Call.started_at).order_by(Call.external_id)).scalars().all()
        # and a comparison in SQL with a bound aware value of another zone finds the same rows
        later = session.execute(select(Call.external_id).where(Call.started_at >= MOMENTS[0])).scalars()
        assert sorted(later) == ["c0", "c2"]  # c1 is 0.25 s earlier than c0, c3 a millennium
    assert rows == [moment.astimezone(UTC) for moment in MOMENTS]
    assert all(row.tzinfo is UTC for row in rows)


def test_sqlite_text_written_by_hand_reads_back_aware(sqlite_database: Database) -> None:
    db = sqlite_database
    try:
        with db.transaction() as session:
            session.execute(
                text(
                    "INSERT INTO call (channel, external_id, direction, from_raw, from_valid, to_raw,"
                    " caller_name, ivr_path, priority, transfers, disposition, started_at, created_at)"
                    " VALUES ('test', 'plain', 'inbound', '', 0, '', '', '[]', 0, '[]', 'in_ivr',"
                    " '2026-12-02 04:20:05', '2026-12-02T04:20:05+08:00')"
                )
            )
        with db.read() as session:
            started, created = session.execute(
                select(Call.started_at, Call.created_at).where(Call.external_id == "plain")
            ).one()
    finally:
        with db.transaction() as session:
            session.execute(text("DELETE FROM call WHERE external_id = 'plain'"))
    assert started == datetime(2026, 12, 2, 4, 20, 5, tzinfo=UTC)
    assert created == datetime(2026, 12, 1, 20, 20, 5, tzinfo=UTC)
