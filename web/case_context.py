"""What the case pages need from the process, per request: clock, case policy, departments, storage,
the signed-in user as a model. Wired once by ``web.cases.install``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from flask import abort, current_app
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import User
from callcenter.services import cases
from web.context import web_context
from web.i18n import current_locale
from web.presenters import Display

CLOCK_KEY = "callcenter.cases.clock"
ATTACHMENTS_DIR = "case-attachments"


def now() -> datetime:
    clock: Callable[[], datetime] = current_app.extensions[CLOCK_KEY]
    return clock()


def policy() -> cases.CasePolicy:
    return cases.CasePolicy.from_settings(web_context().settings)


def department_names() -> dict[str, tuple[str, str]]:
    return {d.code: (d.name_zh, d.name_en) for d in web_context().settings.departments}


def department_choices() -> list[tuple[str, str]]:
    zh = current_locale() == "zh"
    return [(code, names[0] if zh else names[1]) for code, names in department_names().items()]


def category_choices() -> list[tuple[str, str]]:
    zh = current_locale() == "zh"
    return [(c.code, c.name_zh if zh else c.name_en) for c in policy().rules.categories]


def store() -> cases.AttachmentStore:
    settings = web_context().settings
    root = settings.path(settings.storage.var_dir) / ATTACHMENTS_DIR
    return cases.AttachmentStore(root, settings.cases.attachment_max_mb * 1_000_000)


def display(*, reveal: bool = False) -> Display:
    settings = web_context().settings
    return Display(settings.zone, settings.organisation.phone_region, current_locale(), reveal)


def viewer(session: Session) -> User:
    user = session.get(User, current_user.id)
    if user is None:
        abort(403)
    return user


def user_names(session: Session) -> dict[int, str]:
    rows = session.execute(select(User.id, User.display_name, User.username)).all()
    return {row.id: row.display_name or row.username for row in rows}


def local_end_of_day(day: date) -> datetime:
    return cases.end_of_day(day, web_context().settings.zone)


def local_instant(moment: datetime) -> datetime:
    return moment.replace(tzinfo=web_context().settings.zone)
