"""Whether a callback may be dialled now, as a pure function of the task's facts and ``now``.

The calling window is in the *callee's* local time (D49): the zone comes from the number
(phonenumbers' time-zone table); a number with several zones (the USA, Russia, Brazil, China's
landlines are fine but +1 mobiles are not) or none is ambiguous, and the campaign's zone is used
instead. The decision says so (``zone_note``), and the audit keeps it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

from callcenter.ivr.hours import BusinessHours
from callcenter.workdays import DayKind

SEARCH_DAYS = 60
UNKNOWN_ZONE = "Etc/Unknown"


class Reason(StrEnum):
    DIALLED = "dialled"
    OUTSIDE_WINDOW = "outside_window"
    HOLIDAY = "holiday"
    DNC = "dnc"
    LOCKOUT = "lockout"
    MAX_ATTEMPTS = "max_attempts"
    NO_NUMBER = "no_number"
    NOT_MARKETING = "not_marketing"  # G67: a marketing callback in a campaign not enabled for it


class Action(StrEnum):
    DIAL = "dial"
    DEFER = "defer"  # not now: due again at ``retry_at``
    STOP = "stop"  # never by phone: cancelled (DNC, consent) or unreachable (attempts, no number)


@dataclass(frozen=True)
class CalleeZone:
    zone: ZoneInfo
    note: str  # empty when the number named exactly one zone


@functools.lru_cache(maxsize=4096)
def _zones_of(e164: str) -> tuple[str, ...]:
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(name for name in number_zones.time_zones_for_number(parsed) if name != UNKNOWN_ZONE)


def _agreeing_zone(names: tuple[str, ...], now: datetime) -> ZoneInfo | None:
    """One zone for several names that keep the same clock now (Europe/London and Europe/Jersey)."""
    try:
        zones = [ZoneInfo(name) for name in names]
    except ZoneInfoNotFoundError:
        return None
    offsets = {now.astimezone(zone).utcoffset() for zone in zones}
    return zones[-1] if len(offsets) == 1 else None


def callee_zone(e164: str, fallback: ZoneInfo, now: datetime | None = None) -> CalleeZone:
    """The callee's zone from the number, or ``fallback`` with a note saying why. Several zones that
    keep the same clock at ``now`` count as one."""
    names = _zones_of(e164)
    if len(names) > 1 and now is not None and (agreed := _agreeing_zone(names, now)) is not None:
        return CalleeZone(agreed, "")
    if len(names) == 1:
        try:
            return CalleeZone(ZoneInfo(names[0]), "")
        except ZoneInfoNotFoundError:
            return CalleeZone(fallback, f"zone {names[0]} unknown here; used {fallback.key}")
    if not names:
        return CalleeZone(fallback, f"no zone for the number; used the campaign's {fallback.key}")
    shown = ",".join(names[:4]) + ("…" if len(names) > 4 else "")
    return CalleeZone(fallback, f"ambiguous zone ({shown}); used the campaign's {fallback.key}")


@dataclass(frozen=True)
class Policy:
    """What a campaign (or the dialler's defaults for owed callbacks) allows."""

    hours: BusinessHours  # the hotline hours per kind of day, and the working-day calendar
    window: tuple[time, time] | None  # a fixed daily window; None: the hours of that kind of day
    skip_holidays: bool
    max_attempts: int
    backoff: tuple[timedelta, ...]
    fallback_zone: ZoneInfo


@dataclass(frozen=True)
class TaskFacts:
    number: str | None  # E.164
    attempts: int
    on_dnc_list: bool = False
    locked_until: datetime | None = None  # a 72 h lockout after an abandoned outbound call
    marketing: bool = False  # the task is a marketing callback
    marketing_allowed: bool = True  # the campaign is marketing-enabled (G67)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: Reason
    retry_at: datetime | None = None
    zone: str = ""
    zone_note: str = ""
    local_time: str = ""

    @property
    def dial(self) -> bool:
        return self.action is Action.DIAL


def _window_on(policy: Policy, local: datetime) -> tuple[time, time] | None:
    kind = policy.hours.calendar.kind(local.date())
    if policy.skip_holidays and kind is DayKind.HOLIDAY:
        return None
    if policy.window is not None:
        return policy.window
    opening = policy.hours.openings[kind]
    if opening.opens is None or opening.closes is None:
        return None
    return opening.opens, opening.closes


def next_window_start(policy: Policy, zone: ZoneInfo, now: datetime) -> datetime | None:
    """The next instant the window opens in ``zone`` after ``now`` (None: not within 60 days)."""
    local = now.astimezone(zone)
    for offset in range(SEARCH_DAYS):
        day = local.date() + timedelta(days=offset)
        noon = datetime.combine(day, time(12), tzinfo=zone)
        window = _window_on(policy, noon)
        if window is None:
            continue
        # fold=0 and a round trip through UTC: a start inside a DST gap moves to the first real instant.
        start = datetime.combine(day, window[0], tzinfo=zone)
        start = start.astimezone(ZoneInfo("UTC")).astimezone(zone)
        if start > now:
            return start
    return None


def in_window(policy: Policy, zone: ZoneInfo, now: datetime) -> tuple[bool, bool]:
    """(inside the window now, today is a skipped holiday) in ``zone``."""
    local = now.astimezone(zone)
    holiday = policy.skip_holidays and policy.hours.calendar.kind(local.date()) is DayKind.HOLIDAY
    window = _window_on(policy, local)
    if window is None:
        return False, holiday
    return window[0] <= local.time().replace(tzinfo=None) < window[1], holiday


def backoff_after(policy: Policy, failed_attempts: int) -> timedelta:
    """The wait after the n-th failed attempt (the last configured step repeats)."""
    if not policy.backoff:
        return timedelta(0)
    return policy.backoff[min(max(failed_attempts, 1), len(policy.backoff)) - 1]


def _stop_reason(policy: Policy, facts: TaskFacts) -> Reason | None:
    if not facts.number:
        return Reason.NO_NUMBER
    if facts.on_dnc_list:
        return Reason.DNC
    if facts.marketing and not facts.marketing_allowed:
        return Reason.NOT_MARKETING
    if facts.attempts >= policy.max_attempts:
        return Reason.MAX_ATTEMPTS
    return None


def decide(policy: Policy, facts: TaskFacts, now: datetime) -> Decision:
    """Dial now, wait (with when), or stop for good; every branch names its reason."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    stop = _stop_reason(policy, facts)
    if stop is not None or facts.number is None:
        return Decision(Action.STOP, stop or Reason.NO_NUMBER)
    callee = callee_zone(facts.number, policy.fallback_zone, now)
    zone, note = callee.zone.key, callee.note
    local = now.astimezone(callee.zone).strftime("%Y-%m-%d %H:%M %Z")
    if facts.locked_until is not None and facts.locked_until > now:
        return Decision(Action.DEFER, Reason.LOCKOUT, facts.locked_until, zone, note, local)
    inside, holiday = in_window(policy, callee.zone, now)
    if not inside:
        reason = Reason.HOLIDAY if holiday else Reason.OUTSIDE_WINDOW
        retry = next_window_start(policy, callee.zone, now)
        return Decision(Action.DEFER, reason, retry, zone, note, local)
    return Decision(Action.DIAL, Reason.DIALLED, None, zone, note, local)
