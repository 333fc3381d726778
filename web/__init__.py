"""The web layer: staff pages (call log for now) on Flask. Everything is wired in ``create_app``."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from callcenter.db import Database
from callcenter.settings import Settings
from web import auth, calls, health
from web.context import WebContext, install
from web.errors import install_error_pages
from web.i18n import init_i18n
from web.security import configure_session, install_headers

__all__ = ["create_app"]


def create_app(settings: Settings, db: Database | None = None) -> Flask:
    """Build the application for ``settings``; ``db`` is created from the settings when not given.

    Raises ``ConfigurationError`` when no secret key is configured.
    """
    app = Flask(__name__)
    configure_session(app, settings)
    if db is None:
        db = Database(
            settings.database_url, echo=settings.database.echo, pool_size=settings.database.pool_size
        )
    install(app, WebContext(settings=settings, db=db))
    init_i18n(app, settings)
    # The login guard runs before the CSRF check: an anonymous POST is sent to the login page.
    auth.init_auth(app)
    CSRFProtect(app)
    app.register_blueprint(calls.bp)
    app.register_blueprint(health.bp)
    install_error_pages(app)
    install_headers(app, settings)
    return app
