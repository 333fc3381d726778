"""The working-day calendar: weekends, Chinese statutory holidays and make-up working days (调休).

Official data comes from ``chinese_calendar`` (the State Council's yearly notice); settings add
``extra_holidays`` and ``extra_workdays`` that win over it, which is how a year the library does not
know yet is filled in. A date in such a year is still answered (weekends off, weekdays working) but
``covers()`` says so, and the first use per year logs a warning, so callers can tell users loudly.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable
from datetime import date, timedelta
from enum import StrEnum

import chinese_calendar

log = logging.getLogger(__name__)


class DayKind(StrEnum):
    WORKDAY = "workday"  # Monday–Friday, and make-up working days
    REST_DAY = "rest_day"  # ordinary weekends
    HOLIDAY = "holiday"  # statutory days off (including weekend days inside a holiday block)


@functools.cache  # the library's data is fixed for the process; asked on every call's hours check
def _official_years() -> range:
    years = [day.year for day in chinese_calendar.holidays]
    return range(min(years), max(years) + 1)


class WorkCalendar:
    def __init__(self, extra_holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()) -> None:
        self.extra_holidays = frozenset(extra_holidays)
        self.extra_workdays = frozenset(extra_workdays)
        clash = self.extra_holidays & self.extra_workdays
        if clash:
            raise ValueError(f"dates both holiday and workday: {sorted(clash)}")
        self._warned: set[int] = set()
        self._lock = threading.Lock()

    @staticmethod
    def official_years() -> range:
        return _official_years()

    def covers(self, day: date) -> bool:
        """Whether official holiday data (or an override for that year) exists for ``day``'s year."""
        if day.year in self.official_years():
            return True
        return any(extra.year == day.year for extra in self.extra_holidays | self.extra_workdays)

    def kind(self, day: date) -> DayKind:
        if day in self.extra_workdays:
            return DayKind.WORKDAY
        if day in self.extra_holidays:
            return DayKind.HOLIDAY
        if day.year in self.official_years():
            if day in chinese_calendar.holidays:
                return DayKind.HOLIDAY
            if day in chinese_calendar.workdays:
                return DayKind.WORKDAY
        else:
            self._warn_once(day.year)
        return DayKind.REST_DAY if day.weekday() >= 5 else DayKind.WORKDAY

    def is_workday(self, day: date) -> bool:
        return self.kind(day) is DayKind.WORKDAY

    def add_working_days(self, start: date, days: int) -> date:
        """The date ``days`` working days after ``start`` (``start`` itself not counted)."""
        if days < 0:
            raise ValueError("days must not be negative")
        current = start
        while days:
            current += timedelta(days=1)
            if self.is_workday(current):
                days -= 1
        return current

    def _warn_once(self, year: int) -> None:
        with self._lock:
            if year in self._warned:
                return
            self._warned.add(year)
        log.warning(
            "no official holiday data for %s: weekends are treated as days off and weekdays as working "
            "days; add [calendar] extra_holidays / extra_workdays once the State Council publishes %s",
            year,
            year,
        )
