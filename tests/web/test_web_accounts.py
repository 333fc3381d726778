"""Sign-in throttling, idle and absolute session timeouts, deactivation, through the real app."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from callcenter.db import Database
from tests.web.factories import Account, MakeUser, csrf_token, login, update_user, web_settings_for
from web import create_app

LOCKED = "登录失败次数过多:该账号已锁定至"
WRONG = "用户名或密码错误"


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def app(tmp_path: Path, db: Database, clock: Clock) -> Flask:
    settings = web_settings_for(tmp_path, db.url, web={"session_minutes": 120})
    app = create_app(settings, db, clock=clock)
    app.config["TESTING"] = True
    return app


def wrong(client: FlaskClient, account: Account) -> str:
    response = login(client, Account(account.id, account.username, "not-the-password"))
    return response.get_data(as_text=True)


def test_five_failures_lock_the_account_even_for_the_right_password(
    client: FlaskClient, make_user: MakeUser, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    account = make_user("lina")
    for _ in range(4):
        assert WRONG in wrong(client, account)
    with caplog.at_level(logging.WARNING):
        page = wrong(client, account)
    assert LOCKED in page and "10:15" in page  # locked until 15 minutes later, local time
    assert "sign-in locked for user 'lina'" in caplog.text
    refused = login(client, account)
    assert refused.status_code == 200
    assert LOCKED in refused.get_data(as_text=True)
    assert client.get("/calls").status_code == 302
    clock.advance(minutes=15)
    assert login(client, account).headers["Location"] == "/console"


def test_a_success_resets_the_count(client: FlaskClient, make_user: MakeUser) -> None:
    account = make_user("lina")
    for _ in range(4):
        wrong(client, account)
    assert login(client, account).status_code == 302
    client.post("/logout", data={"csrf_token": _token(client)})
    for _ in range(4):
        assert LOCKED not in wrong(client, account)


def _token(client: FlaskClient) -> str:
    return csrf_token(client, "/no-such-page")


def test_unknown_usernames_lock_the_same_way(client: FlaskClient) -> None:
    ghost = Account(0, "ghost", "whatever-password")
    pages = [login(client, ghost).get_data(as_text=True) for _ in range(5)]
    assert all(WRONG in page for page in pages[:4])
    assert LOCKED in pages[4]  # the same message as for a real account: nothing to enumerate


def test_every_worker_sees_the_lock(tmp_path: Path, db: Database, make_user: MakeUser, clock: Clock) -> None:
    # Two apps on one database are two gunicorn workers: the count is shared, not per process.
    settings = web_settings_for(tmp_path, db.url)
    workers = [create_app(settings, db, clock=clock), create_app(settings, db, clock=clock)]
    account = make_user("lina")
    for attempt in range(5):
        wrong(workers[attempt % 2].test_client(), account)
    assert LOCKED in login(workers[1].test_client(), account).get_data(as_text=True)
    assert LOCKED in login(workers[0].test_client(), account).get_data(as_text=True)


def test_one_address_trying_many_names_is_blocked(tmp_path: Path, db: Database, clock: Clock) -> None:
    settings = web_settings_for(tmp_path, db.url, accounts={"max_failures_per_address": 3})
    client = create_app(settings, db, clock=clock).test_client()
    for name in ("a1", "a2"):
        login(client, Account(0, name, "whatever-password"))
    page = login(client, Account(0, "a3", "whatever-password")).get_data(as_text=True)
    assert "来自您地址的登录失败次数过多" in page


def test_idle_session_ends_with_a_message(client: FlaskClient, make_user: MakeUser, clock: Clock) -> None:
    login(client, make_user())
    clock.advance(minutes=29)
    assert client.get("/calls").status_code == 200  # activity: the idle time starts again
    clock.advance(minutes=29)
    assert client.get("/calls").status_code == 200
    clock.advance(minutes=30, seconds=1)
    response = client.get("/calls?before=3")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/calls?before%3D3"
    page = client.get("/login").get_data(as_text=True)
    assert "您已 30 分钟无操作,已自动退出,请重新登录" in page
    assert client.get("/calls").status_code == 302  # really signed out


def test_absolute_lifetime_ends_an_active_session(
    client: FlaskClient, make_user: MakeUser, clock: Clock
) -> None:
    login(client, make_user())
    for _ in range(4):  # active every 25 minutes: never idle
        clock.advance(minutes=25)
        assert client.get("/calls").status_code == 200
    clock.advance(minutes=21)  # 121 minutes after sign-in; the lifetime is 120
    assert client.get("/calls").status_code == 302
    assert "登录已超过 120 分钟,已失效" in client.get("/login").get_data(as_text=True)


def test_deactivated_user_is_signed_out_with_a_message(
    client: FlaskClient, make_user: MakeUser, db: Database
) -> None:
    account = make_user()
    login(client, account)
    update_user(db, account, active=False)
    response = client.get("/calls")
    assert response.headers["Location"].startswith("/login")
    assert "您的账号已停用" in client.get("/login").get_data(as_text=True)
    update_user(db, account, active=True)
    assert client.get("/calls").status_code == 302  # the old session does not come back
