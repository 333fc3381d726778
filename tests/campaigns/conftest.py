"""Fixtures of the campaign tests: a settable clock, tasks, a dialler wired to a channel."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db import Database, insert_ignoring_duplicates
from callcenter.dialler.channels import Channel, TwilioChannel
from callcenter.dialler.engine import Dialler
from callcenter.dialler.lease import Lease
from callcenter.models import Agent, CallbackAttempt, CallbackTask, User, UserRole
from callcenter.settings import Settings
from callcenter.voice.twilio.rest import make_client
from tests.campaigns.fake_twilio import ACCOUNT, TOKEN, FakeTwilio, running_fake_twilio
from tests.conftest import FIXED_NOW, make_settings
from tests.web.factories import Account, login, make_account, web_settings_for
from web import create_app
from web.i18n import compile_catalogs


class Clock:
    def __init__(self, start: datetime = FIXED_NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with running_fake_twilio() as fake:
        yield fake


def twilio_section(fake: FakeTwilio) -> dict[str, Any]:
    return {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "public_base_url": "https://cc.example.com",
        "api_base_url": fake.base_url,
        "caller_id": "+864008123123",
    }


@pytest.fixture
def dial_settings(tmp_path: Path, db: Database, fake_twilio: FakeTwilio) -> Settings:
    return make_settings(
        tmp_path,
        db.url,
        twilio=twilio_section(fake_twilio),
        dialler={"calls_per_minute": 6000, "max_concurrent": 50, "resolve_after_s": 0},
    )


def add_tasks(db: Database, now: datetime, numbers: list[str], *, kind: str = "missed_call") -> list[int]:
    rows = [
        {
            "key": f"test:{number}",
            "kind": kind,
            "status": "pending",
            "number_raw": number,
            "number_e164": number,
            "caller_id": None,
            "call_id": None,
            "queue_name": "consultation",
            "language": "zh",
            "priority": 0,
            "due_at": now,
            "enqueued_at": None,
            "attempts": 0,
            "note": "",
            "data": {},
            "created_at": now,
            "updated_at": now,
        }
        for number in numbers
    ]
    with db.transaction() as session:
        insert_ignoring_duplicates(session, CallbackTask, rows, ["key"])
    with db.read() as session:
        return list(session.execute(select(CallbackTask.id).order_by(CallbackTask.id)).scalars())


def staff_agent(
    session: Session,
    now: datetime,
    name: str,
    *,
    roles: tuple[str, ...] = ("callback_specialist",),
    skill_level: str = "junior",
    user_id: int | None = None,
) -> Agent:
    """An agent with an account holding ``roles`` (or the given account): who may be allocated tasks."""
    if user_id is None:
        user = User(
            username=f"u-{name}",
            password_hash="-",
            created_at=now,
            role_rows=[UserRole(role=role) for role in roles],
        )
        session.add(user)
        session.flush()
        user_id = user.id
    agent = Agent(name=name, skill_level=skill_level, user_id=user_id, created_at=now)
    session.add(agent)
    session.flush()
    return agent


def add_attempt(
    session: Session, task: CallbackTask, now: datetime, result: str, *, abandoned: bool = False
) -> None:
    """A finished dial attempt of ``task`` with ``result`` (``reached``: somebody answered)."""
    number = task.attempts + 1
    task.attempts = number
    session.add(
        CallbackAttempt(
            key=f"cb-{task.id}-{number}",
            task_id=task.id,
            number=number,
            campaign_id=task.data.get("campaign_id"),
            channel="twilio",
            e164=task.number_e164 or "",
            state="done",
            result=result,
            abandoned=abandoned,
            started_at=now,
            ended_at=now,
        )
    )
    session.flush()


MakeDialler = Callable[..., Dialler]


@pytest.fixture
def make_dialler(db: Database, clock: Clock) -> Iterator[MakeDialler]:
    made: list[Dialler] = []

    def make(settings: Settings, channel: Channel | None = None, *, holder: str = "one") -> Dialler:
        if channel is None:
            channel = TwilioChannel(make_client(settings), settings, resolve_after_s=0, in_doubt_after_s=120)
        lease = Lease(db, clock, ttl_s=15, holder=holder)
        dialler = Dialler(settings, db, clock, channel, lease, synchronous=True, sleep=lambda _: None)
        made.append(dialler)
        return dialler

    yield make
    for dialler in made:
        dialler.close()


# --- the web app on the campaign tests' clock ------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path, db: Database, clock: Clock) -> Flask:
    compile_catalogs()
    app = create_app(web_settings_for(tmp_path, db.url), db, clock=clock)
    app.config["TESTING"] = True
    return app


def signed_in(
    app: Flask, db: Database, clock: Clock, name: str, *roles: str, locale: str = "en"
) -> tuple[FlaskClient, Account]:
    """A test client signed in as a new account ``name`` with ``roles``."""
    account = make_account(db, clock(), name, roles, locale=locale)
    client = app.test_client()
    assert login(client, account).status_code == 302
    return client, account
