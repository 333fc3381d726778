"""The dialler's rules with a fixed now: windows in the callee's zone (incl. a DST zone and an
ambiguous one), holidays, DNC, lockout, attempts and back-off."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcenter.dialler.rules import Action, Policy, Reason, TaskFacts, backoff_after, callee_zone, decide
from callcenter.ivr.hours import BusinessHours
from callcenter.workdays import WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = "+8613800138000"
UK = "+442079460000"  # Europe/London: BST in summer, GMT in winter
UK_MOBILE = "+447911123456"  # London, Jersey, Guernsey, Isle of Man: one clock
US = "+12015550123"  # New Jersey: America/New_York
US_TOLL_FREE = "+18002345678"  # a +1 number with many zones: ambiguous


def policy(*, window: tuple[time, time] | None = (time(9), time(21)), skip_holidays: bool = True) -> Policy:
    hours = BusinessHours.every_day(time(6), time(22), SHANGHAI, WorkCalendar())
    return Policy(hours, window, skip_holidays, 3, (timedelta(minutes=30), timedelta(hours=2)), SHANGHAI)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_window_in_the_callees_zone() -> None:
    now = at("2026-11-23T10:00:00+08:00")  # 10:00 Shanghai, 02:00 London, 21:00 New York (Sunday)
    assert decide(policy(), TaskFacts(CN, 0), now).action is Action.DIAL
    uk = decide(policy(), TaskFacts(UK, 0), now)
    assert (uk.action, uk.reason, uk.zone) == (Action.DEFER, Reason.OUTSIDE_WINDOW, "Europe/London")
    assert uk.retry_at == at("2026-11-23T09:00:00+00:00")  # 09:00 in London
    us = decide(policy(), TaskFacts(US, 0), now)
    assert us.zone == "America/New_York" and us.reason is Reason.OUTSIDE_WINDOW
    assert us.retry_at == at("2026-11-23T09:00:00-05:00")


def test_dst_zone_moves_the_window_in_utc() -> None:
    summer = decide(policy(), TaskFacts(UK, 0), at("2026-07-01T08:30:00+00:00"))  # 09:30 BST
    winter = decide(policy(), TaskFacts(UK, 0), at("2026-12-01T08:30:00+00:00"))  # 08:30 GMT
    assert summer.action is Action.DIAL
    assert winter.reason is Reason.OUTSIDE_WINDOW and winter.retry_at == at("2026-12-01T09:00:00+00:00")
    # The night the clocks go forward (29 March 2026): the next window is 09:00 BST = 08:00 UTC.
    spring = decide(policy(), TaskFacts(UK, 0), at("2026-03-29T00:30:00+00:00"))
    assert spring.retry_at == at("2026-03-29T08:00:00+00:00")


def test_ambiguous_zone_falls_back_and_says_so() -> None:
    zone = callee_zone(US_TOLL_FREE, SHANGHAI)
    assert zone.zone == SHANGHAI and "ambiguous" in zone.note
    decision = decide(policy(), TaskFacts(US_TOLL_FREE, 0), at("2026-11-23T10:00:00+08:00"))
    assert decision.dial and decision.zone == "Asia/Shanghai" and "ambiguous" in decision.zone_note
    assert callee_zone(CN, ZoneInfo("UTC")).note == ""
    mobile = callee_zone(UK_MOBILE, SHANGHAI, at("2026-11-23T10:00:00+08:00"))
    assert mobile.note == "" and mobile.zone.utcoffset(datetime(2026, 11, 23)) == timedelta(0)


def test_holidays_are_skipped_for_campaigns_only() -> None:
    national_day = at("2026-10-02T10:00:00+08:00")
    skipped = decide(policy(), TaskFacts(CN, 0), national_day)
    assert skipped.reason is Reason.HOLIDAY
    assert skipped.retry_at == at("2026-10-08T09:00:00+08:00")  # the first day after the Golden Week
    assert decide(policy(skip_holidays=False), TaskFacts(CN, 0), national_day).dial


def test_without_a_window_the_hotline_hours_apply() -> None:
    early = at("2026-11-23T06:30:00+08:00")
    assert decide(policy(window=None), TaskFacts(CN, 0), early).dial
    assert decide(policy(), TaskFacts(CN, 0), early).reason is Reason.OUTSIDE_WINDOW
    assert decide(policy(window=None), TaskFacts(CN, 0), at("2026-11-23T22:00:00+08:00")).reason is (
        Reason.OUTSIDE_WINDOW
    )


@pytest.mark.parametrize(
    ("facts", "action", "reason"),
    [
        (TaskFacts(CN, 0, on_dnc_list=True), Action.STOP, Reason.DNC),
        (TaskFacts(CN, 3), Action.STOP, Reason.MAX_ATTEMPTS),
        (TaskFacts(None, 0), Action.STOP, Reason.NO_NUMBER),
        (TaskFacts(CN, 0, marketing=True, marketing_allowed=False), Action.STOP, Reason.NOT_MARKETING),
        (TaskFacts(CN, 0, marketing=True, marketing_allowed=True), Action.DIAL, Reason.DIALLED),
        (TaskFacts(CN, 2), Action.DIAL, Reason.DIALLED),
    ],
)
def test_stops(facts: TaskFacts, action: Action, reason: Reason) -> None:
    decision = decide(policy(), facts, at("2026-11-23T10:00:00+08:00"))
    assert (decision.action, decision.reason) == (action, reason)


def test_lockout_defers_until_it_ends() -> None:
    now = at("2026-11-23T10:00:00+08:00")
    locked = decide(policy(), TaskFacts(CN, 1, locked_until=now + timedelta(hours=5)), now)
    assert (locked.reason, locked.retry_at) == (Reason.LOCKOUT, now + timedelta(hours=5))
    assert decide(policy(), TaskFacts(CN, 1, locked_until=now), now).dial


def test_backoff_steps_and_repeats() -> None:
    assert [backoff_after(policy(), n) for n in (1, 2, 3, 5)] == [
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=2),
        timedelta(hours=2),
    ]


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(policy(), TaskFacts(CN, 0), datetime(2026, 11, 23, 10))
