"""The web layer: staff pages (call log for now) on Flask. Everything is wired in ``create_app``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from callcenter.cli import utc_now
from callcenter.db import Database
from callcenter.events import LocalBus, publisher_for
from callcenter.settings import Settings
from callcenter.voice.twilio.main import build_voice, enabled
from web import admin, auth, calls, campaigns, cases, console, health, nav, qa, twilio
from web.context import WebContext, install
from web.errors import install_error_pages
from web.i18n import init_i18n
from web.limits import install_limits, use_id_converter
from web.security import configure_session, install_headers

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    db: Database | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    bus: LocalBus | None = None,
) -> Flask:
    """Build the application for ``settings``; ``db`` is created from the settings when not given.

    ``clock`` (aware UTC) defaults to the process clock; ``bus`` carries live events such as
    screen-pops (one in-process bus per app by default). Raises ``ConfigurationError`` when no secret
    key is configured. The Twilio webhooks are served when Twilio is configured
    (``callcenter.voice.twilio.main.enabled``).
    """
    app = Flask(__name__)
    use_id_converter(app)
    configure_session(app, settings)
    install_limits(app, settings)
    if db is None:
        db = Database(
            settings.database_url, echo=settings.database.echo, pool_size=settings.database.pool_size
        )
    if clock is None:
        clock = utc_now
    context = WebContext(settings=settings, db=db, bus=bus or LocalBus(), clock=clock)
    install(app, context)
    init_i18n(app, settings)
    # The login guard runs before the CSRF check: an anonymous POST is sent to the login page.
    auth.init_auth(app)
    nav.install(app)
    CSRFProtect(app)
    _mount_twilio(app, context, clock)
    app.register_blueprint(calls.bp)
    cases.install(app, clock)
    app.register_blueprint(admin.bp)
    console.install(app, context, clock)
    campaigns.init(app, clock)
    app.register_blueprint(health.bp)
    qa.install(app, clock)
    install_error_pages(app)
    install_headers(app, settings)
    return app


def _mount_twilio(app: Flask, context: WebContext, clock: Callable[[], datetime]) -> None:
    """Twilio's webhooks: an application of their own in front of ``app``, signed by Twilio (checked in
    ``web/twilio.py``), so no session, no login and no CSRF token."""
    settings = context.settings
    if not enabled(settings):
        log.info("twilio: not configured (account_sid, auth token, public_base_url); webhooks off")
        return
    assert settings.twilio.auth_token is not None
    # Webhooks publish screen-pops where every web process hears them ([console] bus).
    voice = build_voice(settings, context.db, clock, publisher_for(settings, context.db, context.bus, clock))
    twilio.mount(
        app,
        twilio.TwilioWeb(
            voice, settings.twilio.auth_token.get_secret_value(), settings.twilio.public_base_url
        ),
        max_body=settings.web.max_request_kb * 1024,
    )
