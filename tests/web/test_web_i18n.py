"""Languages: Chinese by default, English on request, per user, and a complete catalogue."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from callcenter.db import Database
from tests.web.factories import MakeUser, login, web_settings_for
from web import create_app
from web.i18n import TRANSLATIONS_DIR

WEB_DIR = TRANSLATIONS_DIR.parent
ZH_CATALOGUE = TRANSLATIONS_DIR / "zh" / "LC_MESSAGES" / "messages.po"


def test_chinese_by_default(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert "登录" in page
    assert "用户名" in page
    assert 'href="/login?lang=en"' in page  # the switch in the header


def test_english_on_request_and_remembered(client: FlaskClient) -> None:
    page = client.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Sign in" in page
    assert "登录" not in page
    assert "Sign in" in client.get("/login").get_data(as_text=True)
    assert "登录" in client.get("/login?lang=zh").get_data(as_text=True)


def test_unknown_language_is_ignored(client: FlaskClient) -> None:
    assert "登录" in client.get("/login?lang=fr").get_data(as_text=True)


def test_choice_survives_sign_in_and_sign_out(client: FlaskClient, make_user: MakeUser) -> None:
    client.get("/login?lang=en")
    login(client, make_user())
    assert "Sign out" in client.get("/calls").get_data(as_text=True)


def test_user_locale_applies_after_sign_in(client: FlaskClient, make_user: MakeUser) -> None:
    login(client, make_user(locale="en"))
    page = client.get("/calls").get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "No calls yet." in page


def test_session_choice_wins_over_user_locale(client: FlaskClient, make_user: MakeUser) -> None:
    login(client, make_user(locale="en"))
    assert "暂无通话记录" in client.get("/calls?lang=zh").get_data(as_text=True)
    assert "暂无通话记录" in client.get("/calls").get_data(as_text=True)


def test_switch_link_keeps_the_page_and_query(client: FlaskClient, make_user: MakeUser) -> None:
    login(client, make_user())
    page = client.get("/calls?before=7").get_data(as_text=True)
    assert 'href="/calls?before=7&amp;lang=en"' in page


def test_configured_default_locale(tmp_path: Path, db: Database) -> None:
    app = create_app(web_settings_for(tmp_path, db.url, web={"default_locale": "en"}), db)
    page = app.test_client().get("/login").get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Sign in" in page


def test_every_message_has_a_chinese_translation() -> None:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    extracted = extract_from_dir(WEB_DIR, method_map, keywords=keywords)
    in_code = {message if isinstance(message, str) else message[0] for _f, _l, message, _c, _x in extracted}
    with ZH_CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle, locale="zh")
    translated = {message.id for message in catalogue if message.id and message.string and not message.fuzzy}
    missing = sorted(in_code - translated)
    assert not missing, f"add to {ZH_CATALOGUE} (see web/babel.cfg): {missing}"
