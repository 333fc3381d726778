"""What the dialler reads around a task: its campaign's policy, the do-not-call list, lockouts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.dialler.rules import Policy
from callcenter.ivr.hours import BusinessHours
from callcenter.models import Call, CallbackAttempt, Campaign, DoNotCall
from callcenter.services.timeline import LEFT_WITHOUT_AGENT
from callcenter.settings import Settings

MARKETING_KINDS = frozenset({"win_back", "renewal_reminder", "special_occasion", "new_order", "pre_sale"})
ABANDONED = LEFT_WITHOUT_AGENT  # answered, then left in the queue without an agent


@dataclass(frozen=True)
class Group:
    """Tasks dialled together under one pace: a campaign, or (``campaign_id`` None) owed callbacks."""

    campaign_id: int | None
    calls_per_minute: float
    max_concurrent: int
    max_attempts: int
    mode: str  # preview | progressive | survey | callback
    marketing: bool
    policy: Policy


def _backoff(settings: Settings) -> tuple[timedelta, ...]:
    return tuple(timedelta(minutes=minutes) for minutes in settings.dialler.backoff_minutes)


def _fixed_window(settings: Settings) -> tuple[time, time] | None:
    dialler = settings.dialler
    if dialler.window_start is None or dialler.window_end is None:
        return None  # the hotline hours of each kind of day
    return dialler.window_start, dialler.window_end


def callbacks_group(settings: Settings, hours: BusinessHours) -> Group:
    """Callbacks the organisation owes (after hours, missed, queue, promised, complaint): the
    hotline's own window, holidays not skipped (the hotline is open then), the dialler's pace."""
    dialler = settings.dialler
    policy = Policy(
        hours=hours,
        window=_fixed_window(settings),
        skip_holidays=False,
        max_attempts=dialler.max_attempts,
        backoff=_backoff(settings),
        fallback_zone=settings.zone,
    )
    return Group(
        None, dialler.calls_per_minute, dialler.max_concurrent, dialler.max_attempts, "callback", True, policy
    )


def campaign_group(settings: Settings, hours: BusinessHours, campaign: Campaign) -> Group:
    window = _fixed_window(settings)
    if campaign.window_start is not None and campaign.window_end is not None:
        window = (campaign.window_start, campaign.window_end)
    policy = Policy(
        hours=hours,
        window=window,
        skip_holidays=settings.dialler.skip_holidays,
        max_attempts=campaign.max_attempts,
        backoff=_backoff(settings),
        fallback_zone=ZoneInfo(campaign.timezone),
    )
    return Group(
        campaign.id,
        campaign.calls_per_minute,
        campaign.max_concurrent,
        campaign.max_attempts,
        campaign.mode,
        campaign.marketing,
        policy,
    )


def dnc_numbers(session: Session, numbers: Iterable[str]) -> set[str]:
    wanted = sorted({number for number in numbers if number})
    if not wanted:
        return set()
    return set(session.execute(select(DoNotCall.e164).where(DoNotCall.e164.in_(wanted))).scalars())


def lockouts(session: Session, numbers: Iterable[str], now: datetime, hours: int) -> dict[str, datetime]:
    """Numbers with an abandoned outbound call in the last ``hours``, and when their lockout ends."""
    wanted = sorted({number for number in numbers if number})
    if not wanted or hours <= 0:
        return {}
    since, span = now - timedelta(hours=hours), timedelta(hours=hours)
    found: dict[str, datetime] = {}
    attempts = select(CallbackAttempt.e164, func.max(CallbackAttempt.ended_at)).where(
        CallbackAttempt.e164.in_(wanted),
        CallbackAttempt.abandoned.is_(True),
        CallbackAttempt.ended_at >= since,
    )
    calls = select(Call.to_e164, func.max(Call.started_at)).where(
        Call.direction == "outbound",
        Call.to_e164.in_(wanted),
        Call.disposition.in_(ABANDONED),
        Call.started_at >= since,
    )
    for query in (attempts.group_by(CallbackAttempt.e164), calls.group_by(Call.to_e164)):
        for number, at in session.execute(query):
            if number and at is not None:
                found[number] = max(found.get(number, at), at)
    return {number: at + span for number, at in found.items()}
