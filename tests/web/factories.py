"""Test data for the web tests, created through the services (as the voice layer and admins would)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from callcenter.db import Database
from callcenter.models import User
from callcenter.services.calls import CallSeen, Entry, record_call
from callcenter.services.users import create_user
from callcenter.settings import Settings
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
TEST_SECRET = "test-secret"

PASSWORD = "correct-horse-battery"
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
BRANCH_DIGITS = {"consultation": "1", "complaint": "2"}


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    password: str


MakeUser = Callable[..., Account]


def web_settings_for(tmp: Path, database_url: str, **sections: dict[str, Any]) -> Settings:
    """The suite's settings with a secret key (refused from the file, accepted as an override)."""
    web = {"secret_key": TEST_SECRET, **sections.pop("web", {})}
    return make_settings(tmp, database_url, web=web, **sections)


def make_account(
    db: Database,
    now: datetime,
    username: str,
    roles: tuple[str, ...] = ("agent_consultation",),
    *,
    locale: str | None = None,
    active: bool = True,
) -> Account:
    with db.transaction() as session:
        user = create_user(session, username, PASSWORD, roles, now=now)
        user.locale, user.active = locale, active
        return Account(user.id, username, PASSWORD)


def update_user(db: Database, account: Account, **columns: Any) -> None:
    with db.transaction() as session:
        user = session.get(User, account.id)
        assert user is not None
        for name, value in columns.items():
            setattr(user, name, value)


def ivr_entries(uniqueid: str, start: datetime, branch: str) -> list[Entry]:
    """What the hotline flow reports for a caller who picks ``branch`` from the main menu."""
    route = f"route_{branch}"
    menu_at, routed_at = start + timedelta(seconds=6), start + timedelta(seconds=10)
    steps: list[tuple[str, datetime, str, dict[str, Any]]] = [
        ("ivr.node", start, "welcome", {"type": "play"}),
        ("ivr.node", menu_at, "main_menu", {"type": "menu"}),
        ("ivr.input", routed_at, "main_menu", {"digits": BRANCH_DIGITS[branch], "outcome": "option"}),
        ("ivr.node", routed_at, route, {"type": "queue"}),
        ("ivr.route", routed_at, route, {"queue": branch, "branch": branch, "priority": 0}),
    ]
    return [
        Entry(f"agi:{uniqueid}:{seq}", kind, at, "agi", node, seq, data)
        for seq, (kind, at, node, data) in enumerate(steps)
    ]


def make_call(
    db: Database,
    now: datetime,
    *,
    external_id: str,
    start: datetime,
    from_raw: str = "13800138000",
    caller_name: str = "张三",
    branch: str = "complaint",
) -> int:
    seen = CallSeen(
        channel="asterisk",
        external_id=external_id,
        at=start,
        from_raw=from_raw,
        to_raw="4008123123",
        caller_name=caller_name,
    )
    with db.transaction() as session:
        call = record_call(session, seen, ivr_entries(external_id, start, branch), region="CN", now=now)
        return call.id


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = CSRF_FIELD.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: FlaskClient, account: Account, *, next_path: str | None = None) -> TestResponse:
    query = {"next": next_path} if next_path is not None else {}
    data = {"username": account.username, "password": account.password, "csrf_token": csrf_token(client)}
    return client.post("/login", query_string=query, data=data)


def logout(client: FlaskClient) -> TestResponse:
    return client.post("/logout", data={"csrf_token": csrf_token(client, "/calls")})
