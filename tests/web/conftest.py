"""Fixtures of the web tests: an app on the parametrised ``db``, a client, accounts and calls."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from callcenter.db import Database
from callcenter.settings import Settings
from tests.web.factories import Account, MakeUser, make_account, web_settings_for
from web import create_app
from web.i18n import compile_catalogs


@pytest.fixture(scope="session", autouse=True)
def _compiled_catalogs() -> None:
    # `make test` compiles them with pybabel; this makes a plain `pytest` run see the translations too.
    compile_catalogs()


@pytest.fixture
def web_settings(tmp_path: Path, db: Database) -> Settings:
    return web_settings_for(tmp_path, db.url)


@pytest.fixture
def app(web_settings: Settings, db: Database) -> Flask:
    app = create_app(web_settings, db)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    # Not `with app.test_client()`: a preserved request context would share `g` with a second client.
    return app.test_client()


@pytest.fixture
def make_user(db: Database, now: datetime) -> MakeUser:
    def make(
        username: str = "agent",
        roles: tuple[str, ...] = ("agent_consultation",),
        *,
        locale: str | None = None,
        active: bool = True,
    ) -> Account:
        return make_account(db, now, username, roles, locale=locale, active=active)

    return make
