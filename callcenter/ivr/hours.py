"""Business hours as pure functions of an aware ``now``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")


@dataclass(frozen=True)
class DailyHours:
    """Open every day from ``opens`` (inclusive) to ``closes`` (exclusive), local to ``zone``."""

    opens: time
    closes: time
    zone: ZoneInfo

    def is_open(self, now: datetime) -> bool:
        _require_aware(now)
        local = now.astimezone(self.zone).time()
        return self.opens <= local < self.closes

    def next_opening(self, now: datetime) -> datetime:
        """The next instant the hotline opens (``now`` itself when already open)."""
        _require_aware(now)
        if self.is_open(now):
            return now
        local = now.astimezone(self.zone)
        day = local.date() if local.time() < self.opens else local.date() + timedelta(days=1)
        return datetime.combine(day, self.opens, tzinfo=self.zone)
