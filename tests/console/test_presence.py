"""Shifts (pure, of a fixed now) and presence with its log, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import AgentPresence, PresenceLog
from callcenter.services import presence
from callcenter.services.presence import ConsoleError
from callcenter.settings import Console, ShiftTimes
from tests.conftest import FIXED_NOW, make_settings
from tests.console.factories import make_agent

ZONE = ZoneInfo("Asia/Shanghai")
CONSOLE = Console()


def local(hour: int, minute: int = 0, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE)


@pytest.mark.parametrize(
    ("at", "code", "late"),
    [
        (local(5, 30), "early", False),  # before the early shift: on time for it
        (local(6, 0), "early", False),
        (local(6, 1), "early", True),
        (local(13, 10), "late", False),  # within an hour before the late shift: early for it
        (local(12, 30), "early", True),
        (local(14, 20), "late", True),
        (local(23, 30), None, False),  # between shifts
    ],
)
def test_a_login_belongs_to_a_shift_and_is_late_after_its_start(
    at: datetime, code: str | None, late: bool
) -> None:
    window = presence.shift_for_login(at, CONSOLE, ZONE)
    assert (window.code if window else None) == code
    assert presence.is_late(at, window, CONSOLE.late_grace_min) is late


def test_grace_minutes_and_a_night_shift_over_midnight() -> None:
    night = ShiftTimes(code="night", name_zh="夜班", name_en="Night", start=time(22, 0), end=time(6, 0))
    console = Console(shifts=(*CONSOLE.shifts, night), late_grace_min=5)
    window = presence.shift_at(local(2, 0, day=24), console, ZONE)
    assert window is not None and window.code == "night" and window.day.isoformat() == "2026-11-23"
    assert window.end == local(6, 0, day=24)
    early = presence.shift_for_login(local(6, 4), console, ZONE)
    assert not presence.is_late(local(6, 4), early, 5)
    assert presence.is_late(local(6, 6), early, 5)


def test_the_previous_shift() -> None:
    previous = presence.previous_window(local(15, 0), CONSOLE, ZONE)
    assert previous is not None and previous.code == "early" and previous.end == local(14, 0)


def test_sign_on_is_logged_with_its_shift_and_late_flag(db: Database) -> None:
    agent_id = make_agent(db, FIXED_NOW, user_id=None)
    at = local(6, 30)  # 30 minutes into the early shift
    with db.transaction() as session:
        row = presence.set_presence(session, agent_id, "available", now=at, console=CONSOLE, zone=ZONE)
        assert (row.status, row.shift_code, row.late) == ("available", "early", True)
    with db.transaction() as session:
        presence.set_presence(
            session, agent_id, "break", now=at + timedelta(hours=1), console=CONSOLE, zone=ZONE
        )
        presence.set_presence(
            session, agent_id, "break", now=at + timedelta(hours=1, minutes=1), console=CONSOLE, zone=ZONE
        )
    with db.read() as session:
        log = list(session.execute(select(PresenceLog).order_by(PresenceLog.at)).scalars())
        assert [(e.status, e.previous, e.login, e.late) for e in log] == [
            ("available", "offline", True, True),
            ("break", "available", False, False),
        ]
        assert log[0].at == at.astimezone(UTC)
        assert [e.agent_id for e in presence.late_logins(session, presence.shift_at(at, CONSOLE, ZONE))] == [
            agent_id
        ]


def test_going_offline_ends_the_sign_on_and_a_replayed_change_adds_nothing(db: Database) -> None:
    agent_id = make_agent(db, FIXED_NOW, user_id=None)
    with db.transaction() as session:
        presence.set_presence(
            session, agent_id, "available", now=local(5, 55), console=CONSOLE, zone=ZONE, key="k1"
        )
        presence.set_presence(
            session, agent_id, "offline", now=local(14, 0), console=CONSOLE, zone=ZONE, key="k2"
        )
    with db.transaction() as session:
        presence.set_presence(
            session, agent_id, "offline", now=local(14, 0), console=CONSOLE, zone=ZONE, key="k2"
        )
    with db.read() as session:
        row = session.get(AgentPresence, agent_id)
        assert row is not None and (row.status, row.shift_code, row.login_at) == ("offline", None, None)
        assert session.execute(select(PresenceLog.key).order_by(PresenceLog.id)).scalars().all() == [
            "k1",
            "k2",
        ]


def test_unknown_status_is_refused(db: Database) -> None:
    agent_id = make_agent(db, FIXED_NOW, user_id=None)
    with db.transaction() as session, pytest.raises(ConsoleError):
        presence.set_presence(session, agent_id, "lunch", now=FIXED_NOW, console=CONSOLE, zone=ZONE)


def test_shifts_come_from_settings(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        "sqlite://",
        console={
            "shifts": [{"code": "day", "name_zh": "白班", "name_en": "Day", "start": "08:00", "end": "20:00"}]
        },
    )
    assert [s.code for s in settings.console.shifts] == ["day"]
    assert settings.console.wrapup_window_min == 10
