"""Web accounts: creation, password checks, roles."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from callcenter.exceptions import CallcenterError
from callcenter.models import User, UserRole
from callcenter.models.user import ROLES

MIN_PASSWORD_LENGTH = 8
# Checked against when the user does not exist, so both paths cost the same (no user enumeration).
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class UserError(CallcenterError):
    pass


def create_user(
    session: Session,
    username: str,
    password: str,
    roles: Iterable[str],
    *,
    now: datetime,
    display_name: str = "",
) -> User:
    """Create an account; raises UserError if the name is taken, a role unknown or the password short."""
    username = username.strip()
    if not username or len(username) > 64:
        raise UserError("username must be 1 to 64 characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    wanted = sorted(set(roles))
    unknown = [role for role in wanted if role not in ROLES]
    if unknown or not wanted:
        raise UserError(
            f"unknown roles {unknown}; choose from {', '.join(ROLES)}" if unknown else "give a role"
        )
    if find_user(session, username) is not None:
        raise UserError(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=generate_password_hash(password),
        active=True,
        created_at=now,
    )
    user.role_rows = [UserRole(role=role) for role in wanted]
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, username: str) -> User | None:
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, else None (timing does not reveal which failed)."""
    user = find_user(session, username.strip())
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user
