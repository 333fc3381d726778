from __future__ import annotations

from datetime import datetime

import pytest

from callcenter.db import Database
from callcenter.services.demo import seed_demo
from callcenter.services.users import UserError, authenticate, create_user


def test_create_and_authenticate(db: Database, now: datetime) -> None:
    with db.transaction() as session:
        user = create_user(session, "qa1", "correct horse", ["qa"], now=now, display_name="质检一")
        assert user.password_hash != "correct horse"
    with db.sessions() as session:
        found = authenticate(session, "qa1", "correct horse")
        assert found is not None and found.roles == {"qa"} and found.display_name == "质检一"
        assert authenticate(session, "qa1", "wrong password") is None
        assert authenticate(session, "nobody", "correct horse") is None


@pytest.mark.parametrize(
    ("username", "password", "roles", "message"),
    [
        ("x", "short", ["qa"], "at least 8"),
        ("x", "long enough", ["wizard"], "unknown roles"),
        ("x", "long enough", [], "give a role"),
        ("", "long enough", ["qa"], "username"),
    ],
)
def test_bad_accounts_are_refused(
    db: Database, now: datetime, username: str, password: str, roles: list[str], message: str
) -> None:
    with db.transaction() as session, pytest.raises(UserError, match=message):
        create_user(session, username, password, roles, now=now)


def test_duplicate_username_is_refused(db: Database, now: datetime) -> None:
    with db.transaction() as session:
        create_user(session, "dup", "long enough", ["qa"], now=now)
    with db.transaction() as session, pytest.raises(UserError, match="already exists"):
        create_user(session, "dup", "long enough", ["qa"], now=now)


def test_demo_seed_is_idempotent(db: Database, now: datetime) -> None:
    with db.transaction() as session:
        first = seed_demo(session, now=now, admin_password="admin-password")
    with db.transaction() as session:
        second = seed_demo(session, now=now, admin_password="admin-password")
    assert all(login.created for login in first) and not any(login.created for login in second)
    with db.sessions() as session:
        admin = authenticate(session, "admin", "admin-password")
        assert admin is not None and admin.has_role("admin")
