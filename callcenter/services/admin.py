"""Account administration: create and change web accounts, reset passwords, each change audited.

Every change is written to the audit log (``AuditLog``) in the same transaction as the change itself:
who (the acting admin), what (``admin.user.create`` …, and the fields with their old and new values),
when, and from which address. Passwords never reach the log.

Errors are ``AdminError`` with the form field they belong to and a code the web translates; the rules
hold here, not only in the forms, so the CLI and any later API get the same protection. Agents and
queues are in ``services/staffing.py``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from callcenter.exceptions import CallcenterError
from callcenter.models import AuditLog, User, UserRole
from callcenter.models.user import ROLES
from callcenter.services import login_throttle, users

LOCALES = ("zh", "en")
ADMIN_ROLE = "admin"
# Roles that make no sense without a department (settings' departments).
DEPARTMENT_ROLES = frozenset({"department_handler"})


class AdminError(CallcenterError):
    """A change refused by the rules; ``field`` names the form field, ``code`` the rule (translated by
    the web), ``params`` fill in its message."""

    def __init__(self, field: str, code: str, **params: Any) -> None:
        super().__init__(f"{field}: {code} {params}" if params else f"{field}: {code}")
        self.field = field
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Actor:
    """Who makes a change: kept on every audit row (the name too, in case the account goes)."""

    user_id: int | None
    username: str
    remote_addr: str = ""


@dataclass(frozen=True)
class AccountFields:
    """What an admin sets on an account (the username is fixed at creation)."""

    display_name: str
    roles: frozenset[str]
    department: str | None = None
    is_department_head: bool = False
    locale: str | None = None
    active: bool = True


def audit(
    session: Session,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object,
    *,
    now: datetime,
    data: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditLog:
    """Append one audit row (who, what, when, from where) to the current transaction."""
    row = AuditLog(
        at=now,
        user_id=actor.user_id,
        username=actor.username[:64],
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:64],
        reason=reason,
        remote_addr=actor.remote_addr[:64],
        data=data or {},
    )
    session.add(row)
    return row


def audit_query(prefixes: tuple[str, ...] = ("admin.",)) -> Select[tuple[AuditLog]]:
    """Audit rows whose action starts with one of ``prefixes``, newest first (the id breaks ties)."""
    return (
        select(AuditLog)
        .where(or_(*(AuditLog.action.startswith(prefix, autoescape=True) for prefix in prefixes)))
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
    )


def recent_audit(
    session: Session, *, prefixes: tuple[str, ...] = ("admin.",), limit: int = 100
) -> list[AuditLog]:
    """The newest audit rows whose action starts with one of ``prefixes``."""
    return list(session.execute(audit_query(prefixes).limit(limit)).scalars())


def list_accounts(session: Session) -> list[User]:
    query = select(User).options(selectinload(User.agent)).order_by(User.username)
    return list(session.execute(query).scalars())


def get_account(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise AdminError("user", "not_found")
    return user


def handlers_by_department(session: Session) -> dict[str, list[User]]:
    """Active accounts with a department, per department code; heads first, then by name."""
    query = (
        select(User)
        .where(User.department.is_not(None), User.active.is_(True))
        .order_by(User.is_department_head.desc(), User.username)
    )
    found: dict[str, list[User]] = {}
    for user in session.execute(query).scalars():
        found.setdefault(user.department or "", []).append(user)
    return found


def _check_fields(fields: AccountFields, departments: Collection[str]) -> None:
    if not fields.display_name.strip() or len(fields.display_name) > 64:
        raise AdminError("display_name", "length", max=64)
    unknown = sorted(fields.roles - set(ROLES))
    if unknown:
        raise AdminError("roles", "unknown", roles=", ".join(unknown))
    if not fields.roles:
        raise AdminError("roles", "required")
    if fields.department is not None and fields.department not in departments:
        raise AdminError("department", "unknown", department=fields.department)
    if fields.department is None and (fields.is_department_head or fields.roles & DEPARTMENT_ROLES):
        raise AdminError("department", "required")
    if fields.locale is not None and fields.locale not in LOCALES:
        raise AdminError("locale", "unknown")


def _values(user: User) -> dict[str, Any]:
    return {
        "display_name": user.display_name,
        "roles": sorted(user.roles),
        "department": user.department,
        "is_department_head": user.is_department_head,
        "locale": user.locale,
        "active": user.active,
    }


def _apply(user: User, fields: AccountFields) -> None:
    user.display_name = fields.display_name.strip()
    user.department = fields.department
    user.is_department_head = fields.is_department_head
    user.locale = fields.locale
    user.active = fields.active
    current = {row.role: row for row in user.role_rows}
    user.role_rows = [current.get(role) or UserRole(role=role) for role in sorted(fields.roles)]


def create_account(
    session: Session,
    actor: Actor,
    username: str,
    password: str,
    fields: AccountFields,
    *,
    departments: Collection[str],
    min_password_length: int,
    now: datetime,
) -> User:
    """Create an account with ``fields``; audited as ``admin.user.create`` (without the password)."""
    _check_fields(fields, departments)
    username = username.strip()
    if users.find_user(session, username) is not None:
        raise AdminError("username", "taken")
    try:
        user = users.create_user(
            session,
            username,
            password,
            fields.roles,
            now=now,
            display_name=fields.display_name.strip(),
            min_password_length=min_password_length,
        )
    except users.WeakPassword as exc:
        raise AdminError("password", exc.problems[0], min_length=min_password_length) from exc
    except users.UserError as exc:
        raise AdminError("username", "invalid") from exc
    _apply(user, fields)
    session.flush()
    audit(
        session,
        actor,
        "admin.user.create",
        "user",
        user.id,
        now=now,
        data={"username": username, **_values(user)},
    )
    return user


def update_account(
    session: Session,
    actor: Actor,
    user_id: int,
    fields: AccountFields,
    *,
    departments: Collection[str],
    now: datetime,
) -> dict[str, list[Any]]:
    """Change an account; returns (and audits as ``admin.user.update``) the changed fields as
    ``{field: [old, new]}``. Admins cannot lock themselves out, nor leave no active admin."""
    _check_fields(fields, departments)
    user = get_account(session, user_id)
    if user.id == actor.user_id and not fields.active:
        raise AdminError("active", "self_deactivate")
    if user.id == actor.user_id and ADMIN_ROLE not in fields.roles:
        raise AdminError("roles", "self_admin")
    losing_admin = user.active and user.has_role(ADMIN_ROLE)
    dropping = not fields.active or ADMIN_ROLE not in fields.roles
    if losing_admin and dropping and _active_admins(session) <= 1:
        raise AdminError("roles", "last_admin")
    before = _values(user)
    _apply(user, fields)
    after = _values(user)
    changes = {name: [before[name], after[name]] for name in before if before[name] != after[name]}
    if changes:
        session.flush()
        audit(
            session,
            actor,
            "admin.user.update",
            "user",
            user.id,
            now=now,
            data={"username": user.username, "changes": changes},
        )
    return changes


def _active_admins(session: Session) -> int:
    query = (
        select(func.count())
        .select_from(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == ADMIN_ROLE, User.active.is_(True))
    )
    return int(session.execute(query).scalar_one())


def reset_password(
    session: Session, actor: Actor, user_id: int, password: str, *, min_password_length: int, now: datetime
) -> None:
    """Set a new password (the policy applies) and lift a sign-in lock on the username; audited as
    ``admin.user.password`` without the password."""
    user = get_account(session, user_id)
    try:
        user.password_hash = users.hash_password(password, user.username, min_length=min_password_length)
    except users.WeakPassword as exc:
        raise AdminError("password", exc.problems[0], min_length=min_password_length) from exc
    login_throttle.record_success(session, user.username)
    audit(session, actor, "admin.user.password", "user", user.id, now=now, data={"username": user.username})
