"""QA web fixtures: a drawn, assigned sample whose recording is a real WAV in the monitor folder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from callcenter.db import Database
from callcenter.models import Agent, QAAssignment, User
from callcenter.services import qa_scorecards
from callcenter.services.qa_assignment import assign_pending
from callcenter.services.qa_sampling import SamplingParams, draw
from callcenter.services.users import create_user
from callcenter.settings import Settings
from tests.qa.factories import make_agent, make_recorded_call, write_wav
from tests.qa.test_sampling import DAY, ZONE, at
from tests.web.factories import PASSWORD, Account, web_settings_for
from web import create_app
from web.i18n import compile_catalogs


@dataclass(frozen=True)
class Scene:
    qa1: Account
    qa2: Account
    supervisor: Account
    agent: Account
    other_agent: Account
    sample_id: int
    recording_id: int
    assignment_id: int
    wav: bytes


def build_scene(db: Database, settings: Settings, now: datetime) -> Scene:
    """Two QA users, a supervisor, an agent (张伟) with one recorded complaint call, drawn and assigned
    to qa1 (the rotation starts with the first QA account)."""
    folder = settings.path(settings.storage.monitor_dir)
    size = write_wav(folder, "2026/11/22/call-1.wav", seconds=4.0)
    with db.transaction() as s:
        qa1 = create_user(s, "qa1", PASSWORD, ("qa",), now=now, display_name="质检一")
        qa2 = create_user(s, "qa2", PASSWORD, ("qa",), now=now, display_name="质检二")
        sup = create_user(s, "boss", PASSWORD, ("supervisor",), now=now)
        agent_user = create_user(s, "zhangwei", PASSWORD, ("agent_complaint",), now=now, display_name="张伟")
        other_user = create_user(s, "lina", PASSWORD, ("agent_complaint",), now=now)
        agent = make_agent(s, "张伟", team="一组", user=agent_user, now=now)
        make_agent(s, "李娜", team="一组", user=other_user, now=now)
        call = make_recorded_call(
            s, agent_id=agent.id, queue="complaint", start=at(10), uri="2026/11/22/call-1.wav", size=size
        )
        qa_scorecards.ensure_default(s, now=now)
        accounts = [Account(u.id, u.username, PASSWORD) for u in (qa1, qa2, sup, agent_user, other_user)]
    with db.transaction() as s:
        draw(s, start=DAY, end=DAY + timedelta(days=1), params=SamplingParams(), zone=ZONE, now=now, seed=7)
        assign_pending(s, now=now, zone=ZONE, cap=20)
        assignment = s.query(QAAssignment).one()
        sample = assignment.sample
        assert sample.call_id == call.id and assignment.user_id == accounts[0].id
        ids = (sample.id, sample.recording_id, assignment.id)
        assert s.get(User, accounts[3].id) is not None and s.query(Agent).count() == 2
    return Scene(*accounts, *ids, wav=(folder / "2026/11/22/call-1.wav").read_bytes())


@pytest.fixture(scope="session", autouse=True)
def _compiled_catalogs() -> None:
    compile_catalogs()


@pytest.fixture
def web_settings(tmp_path: Path, db: Database) -> Settings:
    return web_settings_for(tmp_path, db.url)


@pytest.fixture
def app(web_settings: Settings, db: Database, now: datetime) -> Flask:
    app = create_app(web_settings, db, clock=lambda: now)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def scene(db: Database, web_settings: Settings, now: datetime, app: Flask) -> Scene:
    return build_scene(db, web_settings, now)
