"""Business hours as pure functions of an aware ``now``, on the working-day calendar.

Each kind of day (working day — make-up working days included —, ordinary rest day, statutory
holiday) has its own opening times; a day kind can be closed all day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from callcenter.settings import OpeningTimes, Settings
from callcenter.workdays import DayKind, WorkCalendar

SEARCH_DAYS = 400  # how far ahead next_opening looks before giving up (a closed-forever setting)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")


@dataclass(frozen=True)
class Opening:
    """Open from ``opens`` (inclusive) to ``closes`` (exclusive); ``None`` times mean closed all day."""

    opens: time | None
    closes: time | None

    @classmethod
    def closed(cls) -> Opening:
        return cls(None, None)

    def contains(self, moment: time) -> bool:
        return self.opens is not None and self.closes is not None and self.opens <= moment < self.closes


@dataclass(frozen=True)
class BusinessHours:
    openings: Mapping[DayKind, Opening]
    zone: ZoneInfo
    calendar: WorkCalendar

    @classmethod
    def every_day(cls, opens: time, closes: time, zone: ZoneInfo, calendar: WorkCalendar) -> BusinessHours:
        same = Opening(opens, closes)
        return cls(dict.fromkeys(DayKind, same), zone, calendar)

    def opening_on(self, local: datetime) -> Opening:
        return self.openings[self.calendar.kind(local.date())]

    def is_open(self, now: datetime) -> bool:
        _require_aware(now)
        local = now.astimezone(self.zone)
        return self.opening_on(local).contains(local.time())

    def next_opening(self, now: datetime) -> datetime:
        """The next instant the hotline opens (``now`` itself when already open)."""
        _require_aware(now)
        if self.is_open(now):
            return now
        local = now.astimezone(self.zone)
        for offset in range(SEARCH_DAYS):
            day = local.date() + timedelta(days=offset)
            opening = self.openings[self.calendar.kind(day)]
            if opening.opens is None:
                continue
            candidate = datetime.combine(day, opening.opens, tzinfo=self.zone)
            if candidate > now:
                return candidate
        raise ValueError(f"the hotline does not open in the next {SEARCH_DAYS} days")


def _opening(times: OpeningTimes) -> Opening:
    return Opening.closed() if times.closed else Opening(times.open, times.close)


def work_calendar(settings: Settings) -> WorkCalendar:
    return WorkCalendar(settings.calendar.extra_holidays, settings.calendar.extra_workdays)


def business_hours(settings: Settings, calendar: WorkCalendar | None = None) -> BusinessHours:
    """The hotline hours from settings: [hours] for working days, [hours.rest_days], [hours.holidays]."""
    hours = settings.hours
    openings = {
        DayKind.WORKDAY: _opening(hours),
        DayKind.REST_DAY: _opening(hours.rest_days),
        DayKind.HOLIDAY: _opening(hours.holidays),
    }
    return BusinessHours(openings, settings.zone, calendar or work_calendar(settings))
