"""The application factory: configuration, cookies, headers, health check, sessions returned to the pool."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.pool import QueuePool

from callcenter.db import Database
from callcenter.exceptions import ConfigurationError
from callcenter.settings import Settings
from tests.web.factories import MakeUser, login, make_call, web_settings_for
from web import create_app
from web.context import EXTENSION_KEY, WebContext


def test_refuses_to_start_without_a_secret_key(tmp_path: Path, db: Database) -> None:
    settings = web_settings_for(tmp_path, db.url, web={"secret_key": None})
    assert settings.web.secret_key is None
    with pytest.raises(ConfigurationError, match="CALLCENTER_WEB__SECRET_KEY"):
        create_app(settings, db)


def test_keeps_settings_and_database_on_the_app(app: Flask, web_settings: Settings, db: Database) -> None:
    context = app.extensions[EXTENSION_KEY]
    assert isinstance(context, WebContext)
    assert context.settings is web_settings
    assert context.db is db


def test_creates_its_own_database_when_none_is_given(web_settings: Settings, db: Database) -> None:
    app = create_app(web_settings)
    own = app.extensions[EXTENSION_KEY].db
    try:
        assert own is not db
        assert own.url == web_settings.database_url
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        own.dispose()


def test_session_cookie_is_http_only_lax_and_expires(app: Flask, web_settings: Settings) -> None:
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(minutes=web_settings.web.session_minutes)
    assert app.config["WTF_CSRF_TIME_LIMIT"] == web_settings.web.session_minutes * 60
    cookie = app.test_client().get("/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_session_cookie_is_secure_behind_https(tmp_path: Path, db: Database) -> None:
    settings = web_settings_for(tmp_path, db.url, twilio={"public_base_url": "https://hotline.example.com"})
    app = create_app(settings, db)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    response = app.test_client().get("/login")
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


@pytest.mark.parametrize("path", ["/login", "/healthz", "/static/app.css", "/calls", "/no-such-page"])
def test_security_headers_on_every_response(client: FlaskClient, path: str) -> None:
    with client.get(path) as response:  # closes the static file
        headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_pages_are_not_cached_but_static_files_may_be(client: FlaskClient) -> None:
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    with client.get("/static/app.css") as static:
        assert "no-store" not in static.headers.get("Cache-Control", "")


def test_pages_have_no_inline_script(
    client: FlaskClient, make_user: MakeUser, db: Database, now: datetime
) -> None:
    account = make_user()
    call_id = make_call(db, now, external_id="1.1", start=now)
    login(client, account)
    for path in ("/login", "/calls", f"/calls/{call_id}"):
        page = client.get(path).get_data(as_text=True)
        assert "<script" not in page
        assert " style=" not in page


def test_healthz_answers_without_login(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_reports_a_dead_database(tmp_path: Path, web_settings: Settings) -> None:
    dead = Database(f"sqlite:///{tmp_path}/no-such-folder/callcenter.db")
    try:
        response = create_app(web_settings, dead).test_client().get("/healthz")
    finally:
        dead.dispose()
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "error": "database unavailable"}


def test_requests_return_their_connections(
    client: FlaskClient, make_user: MakeUser, db: Database, now: datetime
) -> None:
    account = make_user()
    call_id = make_call(db, now, external_id="1.1", start=now)
    login(client, account)
    for path in ("/calls", f"/calls/{call_id}", "/calls/999999", "/healthz"):
        client.get(path)
        pool = db.engine.pool
        assert isinstance(pool, QueuePool)
        # A background thread of the app (the screen-pop ledger, a relay) may hold one for an instant:
        # a leak holds it for good.
        deadline = time.monotonic() + 2.0
        while pool.checkedout() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pool.checkedout() == 0, path
