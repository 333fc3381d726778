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
MAX_PASSWORD_LENGTH = 256
# Checked against when the user does not exist, so both paths cost the same (no user enumeration).
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class UserError(CallcenterError):
    pass


class WeakPassword(UserError):
    """The password breaks the policy; ``problems`` are codes of ``password_problems``."""

    def __init__(self, problems: tuple[str, ...], min_length: int) -> None:
        texts = {
            "too_short": f"password must be at least {min_length} characters",
            "too_long": f"password must be at most {MAX_PASSWORD_LENGTH} characters",
            "same_as_username": "password must not be the username",
        }
        super().__init__("; ".join(texts[problem] for problem in problems))
        self.problems = problems


def password_problems(
    password: str, username: str, *, min_length: int = MIN_PASSWORD_LENGTH
) -> tuple[str, ...]:
    """What is wrong with ``password`` for ``username``: codes ``too_short``, ``too_long`` and
    ``same_as_username`` (compared without case or surrounding blanks: the first thing an attacker
    tries). Empty when the password may be used. The web maps the codes to translated messages."""
    problems = []
    if len(password) < min_length:
        problems.append("too_short")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append("too_long")
    if username.strip() and password.strip().casefold() == username.strip().casefold():
        problems.append("same_as_username")
    return tuple(problems)


def hash_password(password: str, username: str, *, min_length: int = MIN_PASSWORD_LENGTH) -> str:
    """The stored hash of a password that passes the policy; raises WeakPassword otherwise."""
    problems = password_problems(password, username, min_length=min_length)
    if problems:
        raise WeakPassword(problems, min_length)
    return generate_password_hash(password)


def create_user(
    session: Session,
    username: str,
    password: str,
    roles: Iterable[str],
    *,
    now: datetime,
    display_name: str = "",
    min_password_length: int = MIN_PASSWORD_LENGTH,
) -> User:
    """Create an account; raises UserError if the name is taken, a role unknown or the password
    breaks the policy (``password_problems``)."""
    username = username.strip()
    if not username or len(username) > 64:
        raise UserError("username must be 1 to 64 characters")
    password_hash = hash_password(password, username, min_length=min_password_length)
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
        password_hash=password_hash,
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
