"""Sign-in, sign-out and access control.

Every endpoint needs a signed-in user unless it is on ``PUBLIC_ENDPOINTS``: the guard denies by default,
so a new route cannot forget its login check. ``roles_required`` narrows a view to some roles (403).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from callcenter.models import User
from callcenter.models.user import ROLES
from callcenter.services import users
from web.context import reading
from web.i18n import LANG_SESSION_KEY

log = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = frozenset({"auth.login", "health.healthz", "static"})
# Blueprints with their own guard instead of a login: Twilio's webhooks check Twilio's signature.
PUBLIC_BLUEPRINTS = frozenset({"twilio"})
HOME_ENDPOINT = "calls.index"

bp = Blueprint("auth", __name__)
P = ParamSpec("P")
View = Callable[P, ResponseReturnValue]


@dataclass(frozen=True)
class LoggedInUser:
    """The signed-in account as the web sees it: plain data, detached from any database session."""

    id: int
    username: str
    display_name: str
    locale: str | None
    roles: frozenset[str]

    is_authenticated = True
    is_active = True
    is_anonymous = False

    @classmethod
    def from_model(cls, user: User) -> LoggedInUser:
        return cls(user.id, user.username, user.display_name or user.username, user.locale, user.roles)

    def get_id(self) -> str:
        return str(self.id)

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))


class LoginForm(FlaskForm):  # type: ignore[misc]
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])


def load_user(user_id: str) -> LoggedInUser | None:
    if not user_id.isdigit():
        return None
    with reading() as db_session:
        user = db_session.get(User, int(user_id))
        return LoggedInUser.from_model(user) if user is not None and user.active else None


def is_safe_next(target: str | None) -> bool:
    """Only a path on this site: no scheme or host, no ``//host``, no backslashes or control characters
    (browsers turn ``/\\host`` and ``/<tab>/host`` into another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return False
    if any(ch.isspace() or not ch.isprintable() for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def next_or_home(target: str | None) -> str:
    return target if target is not None and is_safe_next(target) else url_for(HOME_ENDPOINT)


def login_redirect() -> Response:
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("auth.login", next=target if is_safe_next(target) else None))


def require_login() -> ResponseReturnValue | None:
    """The app-wide guard (a ``before_request`` hook): deny by default, allow ``PUBLIC_ENDPOINTS``."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.blueprint in PUBLIC_BLUEPRINTS:
        return None
    if current_user.is_authenticated:
        return None
    return login_redirect()


def roles_required(*roles: str) -> Callable[[View[P]], View[P]]:
    """Let only users holding one of ``roles`` reach the view; others get 403.

    Unknown role names fail at import time, so a typo cannot lock everyone out (or in).
    """
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"roles_required: unknown roles {unknown}")
    if not roles:
        raise ValueError("roles_required: give at least one role")

    def decorator(view: View[P]) -> View[P]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            if not current_user.is_authenticated:
                return login_redirect()
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def sign_in(username: str, password: str) -> LoggedInUser | None:
    with reading() as db_session:
        user = users.authenticate(db_session, username, password)
        return LoggedInUser.from_model(user) if user is not None else None


def _fresh_session() -> None:
    """Drop everything in the session but the language choice (at sign-in and sign-out)."""
    lang = session.get(LANG_SESSION_KEY)
    session.clear()
    if lang is not None:
        session[LANG_SESSION_KEY] = lang


def start_session(user: LoggedInUser) -> None:
    _fresh_session()
    session.permanent = True
    login_user(user)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    target = request.args.get("next")
    if current_user.is_authenticated:
        return redirect(next_or_home(target))
    form = LoginForm()
    if form.validate_on_submit():
        user = sign_in(form.username.data, form.password.data)
        if user is not None:
            start_session(user)
            log.info("user %s signed in", user.username)
            return redirect(next_or_home(target))
        log.info("failed sign-in for %r", form.username.data[:64])
        flash(_("Wrong username or password."), "error")
    action = url_for("auth.login", next=target if is_safe_next(target) else None)
    return render_template("auth/login.html", form=form, action=action)


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    logout_user()
    _fresh_session()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


def init_auth(app: Flask) -> None:
    manager = LoginManager()
    manager.login_view = "auth.login"
    manager.user_loader(load_user)
    manager.init_app(app)
    app.before_request(require_login)
    app.register_blueprint(bp)
