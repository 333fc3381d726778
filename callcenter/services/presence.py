"""Agent presence (available, break, wrap-up, offline) with its timestamped log, and shifts (F60).

Shifts are pure functions of an aware ``now``: which shift a moment belongs to, and whether a sign-on
was late. A sign-on is the first change away from ``offline``; it is logged with its shift and the
late flag. A login up to ``early_login_min`` before a shift starts belongs to that shift (an agent of
the late shift signing on at 13:55 is early for the late shift, not late for the early one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db import insert_ignoring_duplicates
from callcenter.exceptions import CallcenterError
from callcenter.models import Agent, AgentPresence, PresenceLog
from callcenter.models.console import PRESENCE_STATUSES
from callcenter.settings import Console, ShiftTimes

# What an agent may choose by hand; wrap-up is entered by a call and left by submitting the wrap-up.
CHOOSABLE = ("available", "break", "offline")


class ConsoleError(CallcenterError):
    """A console request the rules refuse (bad status, missing wrap-up fields, unknown department)."""


@dataclass(frozen=True)
class ShiftWindow:
    """One occurrence of a shift: its day (the local date it starts on) and its aware start and end."""

    day: date
    shift: ShiftTimes
    start: datetime
    end: datetime

    @property
    def code(self) -> str:
        return self.shift.code


def _window(day: date, shift: ShiftTimes, zone: ZoneInfo) -> ShiftWindow:
    start = datetime.combine(day, shift.start, tzinfo=zone)
    end_day = day if shift.end > shift.start else day + timedelta(days=1)
    end = datetime.combine(end_day, shift.end, tzinfo=zone)
    return ShiftWindow(day, shift, start, end)


def windows_around(now: datetime, shifts: tuple[ShiftTimes, ...], zone: ZoneInfo) -> list[ShiftWindow]:
    """The shift occurrences of yesterday, today and tomorrow, by start."""
    today = now.astimezone(zone).date()
    days = (today - timedelta(days=1), today, today + timedelta(days=1))
    return sorted((_window(day, shift, zone) for day in days for shift in shifts), key=lambda w: w.start)


def shift_at(now: datetime, console: Console, zone: ZoneInfo) -> ShiftWindow | None:
    """The shift in progress at ``now``, or None between shifts."""
    for window in windows_around(now, console.shifts, zone):
        if window.start <= now < window.end:
            return window
    return None


def shift_for_login(now: datetime, console: Console, zone: ZoneInfo) -> ShiftWindow | None:
    """The shift a sign-on at ``now`` belongs to: one starting within ``early_login_min``, else the
    one in progress, else None (signed on between shifts)."""
    early = timedelta(minutes=console.early_login_min)
    for window in windows_around(now, console.shifts, zone):
        if window.start - early <= now < window.start:
            return window
    return shift_at(now, console, zone)


def is_late(login_at: datetime, window: ShiftWindow | None, grace_min: int) -> bool:
    return window is not None and login_at > window.start + timedelta(minutes=grace_min)


def previous_window(now: datetime, console: Console, zone: ZoneInfo) -> ShiftWindow | None:
    """The last shift that ended at or before ``now``."""
    ended = [w for w in windows_around(now, console.shifts, zone) if w.end <= now]
    return ended[-1] if ended else None


def at_local(day: date, clock_time: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock_time, tzinfo=zone)


# --- presence in the database --------------------------------------------------------------------


def agent_of_user(session: Session, user_id: int) -> Agent | None:
    return session.execute(select(Agent).where(Agent.user_id == user_id)).scalar_one_or_none()


def current(session: Session, agent_id: int) -> AgentPresence | None:
    return session.get(AgentPresence, agent_id)


def set_presence(
    session: Session,
    agent_id: int,
    status: str,
    *,
    now: datetime,
    console: Console,
    zone: ZoneInfo,
    key: str | None = None,
    call_id: int | None = None,
    by_user_id: int | None = None,
) -> AgentPresence:
    """Change the agent's presence and log it. ``key`` names the change (a replay adds nothing); by
    default the change is named by agent, status and instant. Unchanged presence logs nothing."""
    if status not in PRESENCE_STATUSES:
        raise ConsoleError(f"unknown presence {status!r}")
    row = session.get(AgentPresence, agent_id, with_for_update=True)
    previous = row.status if row is not None else "offline"
    if row is not None and row.status == status and row.call_id == call_id:
        return row
    name = key or f"{agent_id}:{status}:{now.isoformat()}"
    if session.execute(select(PresenceLog.id).where(PresenceLog.key == name)).first() is not None:
        assert row is not None
        return row  # this very change was made already
    if row is None:
        row = AgentPresence(agent_id=agent_id, status="offline", since=now, late=False)
        session.add(row)
    login = previous == "offline" and status != "offline"
    if login:
        window = shift_for_login(now, console, zone)
        row.shift_day = window.day if window else None
        row.shift_code = window.code if window else None
        row.login_at, row.late = now, is_late(now, window, console.late_grace_min)
    row.status, row.since, row.call_id = status, now, call_id
    values = {
        "key": name[:128],
        "agent_id": agent_id,
        "status": status,
        "previous": previous,
        "at": now,
        "call_id": call_id,
        "login": login,
        "late": row.late if login else False,
        "shift_day": row.shift_day,
        "shift_code": row.shift_code,
        "by_user_id": by_user_id,
    }
    insert_ignoring_duplicates(session, PresenceLog, [values], ["key"])
    if status == "offline":
        row.shift_day, row.shift_code, row.login_at, row.late = None, None, None, False
    return row


def history(session: Session, agent_id: int, *, since: datetime, limit: int = 200) -> list[PresenceLog]:
    query = (
        select(PresenceLog)
        .where(PresenceLog.agent_id == agent_id, PresenceLog.at >= since)
        .order_by(PresenceLog.at.desc(), PresenceLog.id.desc())
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def late_logins(session: Session, window: ShiftWindow) -> list[PresenceLog]:
    """The late sign-ons of one shift."""
    query = (
        select(PresenceLog)
        .where(
            PresenceLog.login.is_(True),
            PresenceLog.late.is_(True),
            PresenceLog.shift_day == window.day,
            PresenceLog.shift_code == window.code,
        )
        .order_by(PresenceLog.at)
    )
    return list(session.execute(query).scalars())
