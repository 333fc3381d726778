from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callcenter.ivr.hours import BusinessHours, Opening, business_hours
from callcenter.workdays import DayKind, WorkCalendar
from tests.conftest import make_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkCalendar()
HOURS = BusinessHours.every_day(time(6), time(22), SHANGHAI, CALENDAR)
# Working days 08:30–18:00, weekends 09:00–17:00, statutory holidays closed.
OFFICE = BusinessHours(
    {
        DayKind.WORKDAY: Opening(time(8, 30), time(18)),
        DayKind.REST_DAY: Opening(time(9), time(17)),
        DayKind.HOLIDAY: Opening.closed(),
    },
    SHANGHAI,
    CALENDAR,
)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("local", "is_open"),
    [
        ((5, 59), False),
        ((6, 0), True),
        ((12, 0), True),
        ((21, 59), True),
        ((22, 0), False),
        ((23, 30), False),
    ],
)
def test_open_between_six_and_ten_local_time(local: tuple[int, int], is_open: bool) -> None:
    now = at(2026, 11, 23, *local)
    assert HOURS.is_open(now) is is_open
    assert HOURS.is_open(now.astimezone(UTC)) is is_open  # the same instant in another zone


def test_next_opening() -> None:
    assert HOURS.next_opening(at(2026, 11, 23, 23)) == at(2026, 11, 24, 6)
    assert HOURS.next_opening(at(2026, 11, 24, 3)) == at(2026, 11, 24, 6)
    assert HOURS.next_opening(at(2026, 11, 24, 12)) == at(2026, 11, 24, 12)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        HOURS.is_open(datetime(2026, 11, 23, 12, 0))


def test_statutory_calendar_knows_holidays_and_make_up_days() -> None:
    assert CALENDAR.kind(date(2026, 10, 1)) is DayKind.HOLIDAY  # National Day
    assert CALENDAR.kind(date(2026, 10, 10)) is DayKind.WORKDAY  # a Saturday made a working day (调休)
    assert CALENDAR.kind(date(2026, 11, 28)) is DayKind.REST_DAY  # an ordinary Saturday
    assert CALENDAR.kind(date(2026, 11, 23)) is DayKind.WORKDAY


def test_holiday_closed_make_up_saturday_keeps_working_hours() -> None:
    assert not OFFICE.is_open(at(2026, 10, 2, 10))  # holiday: closed all day
    assert OFFICE.is_open(at(2026, 10, 10, 8, 45))  # 调休 Saturday: working-day hours
    assert not OFFICE.is_open(at(2026, 11, 28, 8, 45))  # ordinary Saturday opens at 09:00
    assert OFFICE.is_open(at(2026, 11, 28, 9, 0))
    # After the last holiday evening the next opening skips the rest of the holiday block.
    assert OFFICE.next_opening(at(2026, 9, 30, 19)) == at(2026, 10, 8, 8, 30)


def test_settings_overrides_fill_a_year_without_official_data(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        "sqlite://",
        hours={"holidays": {"closed": True}},
        calendar={"extra_holidays": ["2027-01-01"], "extra_workdays": ["2027-01-09"]},
    )
    hours = business_hours(settings)
    assert not hours.is_open(at(2027, 1, 1, 10))
    assert hours.calendar.kind(date(2027, 1, 9)) is DayKind.WORKDAY  # a Saturday
    assert hours.calendar.covers(date(2027, 6, 1))


def test_a_year_without_data_is_answered_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    calendar = WorkCalendar()
    assert not calendar.covers(date(2031, 5, 1))
    with caplog.at_level(logging.WARNING):
        assert calendar.kind(date(2031, 5, 1)) is DayKind.WORKDAY  # a Thursday, unknown year
        assert calendar.kind(date(2031, 5, 3)) is DayKind.REST_DAY
    assert sum("no official holiday data for 2031" in record.message for record in caplog.records) == 1


def test_add_working_days_skips_holidays_and_counts_make_up_days() -> None:
    # Registered on 30 Sep 2026: 1–7 Oct are off, 8 and 9 Oct work, 10 Oct is a make-up Saturday.
    assert CALENDAR.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)
    assert CALENDAR.add_working_days(date(2026, 11, 20), 3) == date(2026, 11, 25)


def test_closed_forever_is_an_error() -> None:
    closed = BusinessHours(dict.fromkeys(DayKind, Opening.closed()), SHANGHAI, CALENDAR)
    with pytest.raises(ValueError, match="does not open"):
        closed.next_opening(at(2026, 11, 23, 12))
