from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from callcenter.ivr.hours import DailyHours

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = DailyHours(time(6), time(22), SHANGHAI)


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
    now = datetime(2026, 11, 23, *local, tzinfo=SHANGHAI)
    assert HOURS.is_open(now) is is_open
    assert HOURS.is_open(now.astimezone(UTC)) is is_open  # the same instant in another zone


def test_next_opening() -> None:
    late = datetime(2026, 11, 23, 23, 0, tzinfo=SHANGHAI)
    early = datetime(2026, 11, 24, 3, 0, tzinfo=SHANGHAI)
    assert HOURS.next_opening(late) == datetime(2026, 11, 24, 6, 0, tzinfo=SHANGHAI)
    assert HOURS.next_opening(early) == datetime(2026, 11, 24, 6, 0, tzinfo=SHANGHAI)
    midday = datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)
    assert HOURS.next_opening(midday) == midday


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        HOURS.is_open(datetime(2026, 11, 23, 12, 0))
