"""``load_demo``: every desk has work, made through the services, on both databases; twice adds nothing."""

from __future__ import annotations

import shutil
import wave
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.db import Database
from callcenter.models import (
    Agent,
    Call,
    CallbackTask,
    CallEvent,
    Campaign,
    CampaignMember,
    Case,
    CaseEvent,
    QAAssignment,
    QASample,
    Recording,
    ShiftHandover,
    User,
)
from callcenter.services.demo import DemoLoad, audio, load_demo
from callcenter.services.demo.calls import CALLS
from callcenter.settings import Settings
from recordings.verify import verify_all
from tests.conftest import make_settings

TABLES = (
    Call,
    CallEvent,
    Recording,
    Case,
    CaseEvent,
    CallbackTask,
    Campaign,
    QASample,
    QAAssignment,
    ShiftHandover,
)


@pytest.fixture(scope="session")
def rendered_dialogues(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dialogues rendered once for the whole session (each test's var/ gets a copy)."""
    cache = tmp_path_factory.mktemp("demo-audio")
    synthesise = audio.synthesiser()
    for queue in audio.DIALOGUES:
        audio.dialogue(queue, cache, synthesise)
    return cache


@pytest.fixture
def demo_settings(tmp_path: Path, db: Database, rendered_dialogues: Path) -> Settings:
    settings = make_settings(tmp_path, db.url, agi={"env_timeout_s": 0.5, "reply_timeout_s": 5.0})
    shutil.copytree(rendered_dialogues, settings.path(settings.storage.var_dir) / "demo-audio")
    return settings


def _load(settings: Settings, db: Database, now: datetime) -> DemoLoad:
    return load_demo(settings, db, now, admin_password="admin-password", verify=verify_all)


def _counts(session: Session) -> dict[str, int]:
    return {table.__name__: session.scalar(select(func.count()).select_from(table)) or 0 for table in TABLES}


@pytest.fixture
def loaded(demo_settings: Settings, db: Database, now: datetime) -> DemoLoad:
    return _load(demo_settings, db, now)


def test_calls_have_verified_recordings_of_their_talk_time(
    loaded: DemoLoad, demo_settings: Settings, db: Database
) -> None:
    assert loaded.calls_placed == len(CALLS)
    folder = demo_settings.path(demo_settings.storage.monitor_dir)
    answered = [call for call in CALLS if call.extension]
    with db.read() as session:
        calls = {c.external_id: c for c in session.execute(select(Call)).scalars()}
        assert set(calls) == {call.linkedid for call in CALLS}
        for demo in answered:
            call = calls[demo.linkedid]
            assert call.answered_at is not None and call.agent_id is not None and call.talk_s == demo.talk_s
            (recording,) = session.execute(select(Recording).where(Recording.call_id == call.id)).scalars()
            assert recording.status == "verified", recording.problem
            assert recording.duration_s == pytest.approx(demo.talk_s, abs=0.01)
            with wave.open(str(folder / recording.uri), "rb") as wav:
                assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
                assert wav.getnframes() == demo.talk_s * 8000
        vip = calls["demo.01"]
        assert vip.priority == 10 and vip.caller_name == "张三" and vip.ivr_path
        hung_up = calls["demo.07"]
        assert hung_up.answered_at is None and hung_up.disposition == "abandoned_in_ivr"


def test_every_desk_has_work(loaded: DemoLoad, db: Database) -> None:
    assert loaded.desks.cases == 6 and loaded.desks.handover
    with db.read() as session:
        states = set(session.execute(select(Case.status)).scalars())
        assert states == {
            "registered",
            "assigned",
            "in_progress",
            "solution_pending_approval",
            "customer_replied",
            "closed",
        }
        for case in session.execute(select(Case)).scalars():  # deadlines from the real rules
            assert case.resolution_due_at > case.registered_at and case.number.startswith("TS-")
            assert len(case.calls) == 1
        chenjing = session.execute(select(User).where(User.username == "chenjing")).scalar_one()
        owners = set(
            session.execute(
                select(Agent.user_id).join(CampaignMember, CampaignMember.agent_id == Agent.id)
            ).scalars()
        )
        assert owners == {chenjing.id} and loaded.desks.campaign_tasks >= 4
        assert session.execute(select(Campaign.status)).scalar_one() == "active"
        complaint_callback = session.execute(
            select(CallbackTask).where(CallbackTask.kind == "complaint")
        ).scalar_one()
        assert complaint_callback.status == "pending"
        zhaomin = session.execute(select(User).where(User.username == "zhaomin")).scalar_one()
        samples = session.scalar(select(func.count()).select_from(QASample)) or 0
        assert samples == loaded.desks.qa_sampled and samples >= 3
        reviewers = set(session.execute(select(QAAssignment.user_id)).scalars())
        assert reviewers == {zhaomin.id}
        sunli = session.execute(select(User).where(User.username == "sunli")).scalar_one()
        handover = session.execute(select(ShiftHandover)).scalar_one()
        assert handover.on_duty_id == sunli.id and handover.pending_count >= 5


def test_seeding_twice_adds_nothing(
    loaded: DemoLoad, demo_settings: Settings, db: Database, now: datetime
) -> None:
    with db.read() as session:
        before = _counts(session)
    files = sorted(
        p.stat().st_mtime_ns for p in demo_settings.path(demo_settings.storage.monitor_dir).rglob("*")
    )
    again = _load(demo_settings, db, now.replace(hour=now.hour + 5))  # a later run, another now
    assert again.calls_placed == 0 and again.desks.cases == 0 and again.desks.campaign_tasks == 0
    assert again.desks.qa_sampled == 0 and not again.desks.handover
    with db.read() as session:
        assert _counts(session) == before
    assert (
        sorted(p.stat().st_mtime_ns for p in demo_settings.path(demo_settings.storage.monitor_dir).rglob("*"))
        == files
    )
