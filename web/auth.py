"""Sign-in, sign-out and access control.

Every endpoint needs a signed-in user unless it is on ``PUBLIC_ENDPOINTS``: the guard denies by default,
so a new route cannot forget its login check. ``roles_required`` narrows a view to some roles (403);
every view has it except ``PUBLIC_ENDPOINTS`` and ``SIGNED_IN_ENDPOINTS`` (tests/web/test_web_roles.py
walks the URL map to hold that).

Sign-ins are throttled per username and per client address in the database
(``services/login_throttle.py``). A session ends after ``accounts.idle_minutes`` without a request and
``web.session_minutes`` after sign-in, whichever comes first; both are checked here on every request
against the times kept in the signed session cookie, with the app's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
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
from callcenter.services import login_throttle, users
from web.context import reading, web_context
from web.i18n import LANG_SESSION_KEY
from web.nav import REQUIRED_ROLES, can_open, desk_endpoint

log = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = frozenset({"auth.login", "health.healthz", "static"})
# Open to every signed-in user, whatever the roles: the rest carries ``roles_required``.
# The callback screen decides per task (web/campaigns.py: the callback roles are a setting).
SIGNED_IN_ENDPOINTS = frozenset(
    {"auth.logout", "calls.home", "campaigns.callback_screen", "campaigns.record_callback", "campaigns.dial"}
)
# Where a sign-in without ``next`` leads: the user's desk (web/nav.py:DESKS), else "/" (a welcome page).
HOME_ENDPOINT = "calls.home"
# Session keys: sign-in time and last request (POSIX seconds, from the app's clock).
SIGNED_IN_AT = "signed_in_at"
SEEN_AT = "seen_at"

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
    if target is not None and is_safe_next(target):
        return target
    return url_for(desk_endpoint() or HOME_ENDPOINT)


def login_redirect() -> Response:
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("auth.login", next=target if is_safe_next(target) else None))


def require_login() -> ResponseReturnValue | None:
    """The app-wide guard (a ``before_request`` hook): deny by default, allow ``PUBLIC_ENDPOINTS``.

    A signed-in user's session is ended here when it has been idle or open too long, and a session whose
    account was deactivated (or deleted) since is cleared, each with a message on the login page.
    """
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if current_user.is_authenticated:
        expired = session_expiry()
        if expired is None:
            session[SEEN_AT] = web_context().clock().timestamp()
            return None
        log.info("session of %s ended: %s", current_user.username, expired)
        end_session()
        flash(expired, "info")
        return login_redirect()
    if "_user_id" in session:  # signed in before, but load_user no longer accepts the account
        end_session()
        flash(_("Your account is no longer active. Ask an administrator."), "error")
    return login_redirect()


def session_expiry() -> str | None:
    """Why the signed-in session is over (a message for the login page), or None if it is not."""
    context = web_context()
    now = context.clock().timestamp()
    signed_in_at, seen_at = session.get(SIGNED_IN_AT), session.get(SEEN_AT)
    if not isinstance(signed_in_at, float | int) or not isinstance(seen_at, float | int):
        return str(_("Please sign in again."))
    lifetime = context.settings.web.session_minutes
    if now - signed_in_at > lifetime * 60:
        return str(
            _("Your sign-in expired after %(minutes)d minutes. Please sign in again.", minutes=lifetime)
        )
    idle = context.settings.accounts.idle_minutes
    if now - seen_at > idle * 60:
        return str(
            _(
                "You were signed out after %(minutes)d minutes without activity. Please sign in again.",
                minutes=idle,
            )
        )
    return None


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

        setattr(wrapped, REQUIRED_ROLES, frozenset(roles))  # read by required_roles()
        return wrapped

    return decorator


def sign_in(username: str, password: str, address: str | None) -> LoggedInUser | login_throttle.Lock | None:
    """The user, the lock refusing the attempt (or started by this failure), or None for a failure.

    The password is checked in a read transaction (hashing is slow: no write lock is held meanwhile);
    only a failure, or a success after failures, writes.
    """
    context = web_context()
    now = context.clock()
    with reading() as db_session:
        lock = login_throttle.current_lock(db_session, username, address, now=now)
        if lock is not None:
            log.warning("sign-in refused for %r from %s: locked until %s", username[:64], address, lock.until)
            return lock
        user = users.authenticate(db_session, username, password)
        found = LoggedInUser.from_model(user) if user is not None else None
        clear = found is not None and login_throttle.has_failures(db_session, username)
    if found is None:
        rules = login_throttle.ThrottleRules.from_settings(context.settings.accounts)
        with context.db.transaction() as db_session:
            return login_throttle.record_failure(db_session, username, address, rules, now=now)
    if clear:
        with context.db.transaction() as db_session:
            login_throttle.record_success(db_session, username)
    return found


def lock_message(lock: login_throttle.Lock) -> str:
    until = lock.until.astimezone(web_context().settings.zone).strftime("%H:%M")
    if lock.scope == login_throttle.USER:
        return str(
            _("Too many failed sign-ins: this account is locked until %(time)s. Try again then.", time=until)
        )
    return str(
        _("Too many failed sign-ins from your address: signing in is blocked until %(time)s.", time=until)
    )


def end_session() -> None:
    logout_user()
    _fresh_session()


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
    session[SIGNED_IN_AT] = session[SEEN_AT] = web_context().clock().timestamp()


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    target = request.args.get("next")
    if current_user.is_authenticated:
        return redirect(next_or_home(target))
    form = LoginForm()
    if form.validate_on_submit():
        outcome = sign_in(form.username.data, form.password.data, request.remote_addr)
        if isinstance(outcome, LoggedInUser):
            start_session(outcome)
            log.info("user %s signed in from %s", outcome.username, request.remote_addr)
            return redirect(next_or_home(target))
        if isinstance(outcome, login_throttle.Lock):
            flash(lock_message(outcome), "error")
        else:
            log.info("failed sign-in for %r from %s", form.username.data[:64], request.remote_addr)
            flash(_("Wrong username or password."), "error")
    action = url_for("auth.login", next=target if is_safe_next(target) else None)
    return render_template("auth/login.html", form=form, action=action)


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    end_session()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


def init_auth(app: Flask) -> None:
    manager = LoginManager()
    manager.login_view = "auth.login"
    manager.user_loader(load_user)
    manager.init_app(app)
    app.before_request(require_login)
    app.context_processor(lambda: {"can_open": can_open})
    app.register_blueprint(bp)
