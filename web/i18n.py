"""Languages: English message ids, a Simplified Chinese catalogue, the user's choice of the two.

The locale is, in order: ``?lang=`` (remembered in the session), the signed-in user's ``locale``, the
configured default (``settings.web.default_locale``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, request, session, url_for
from flask_babel import Babel, get_locale
from flask_login import current_user

from callcenter.settings import Settings

TRANSLATIONS_DIR = Path(__file__).with_name("translations")
LANG_SESSION_KEY = "lang"
SUPPORTED_LOCALES = ("zh", "en")
HTML_LANG = {"zh": "zh-CN", "en": "en"}
LOCALE_NAMES = {"zh": "中文", "en": "English"}


def remember_lang_choice() -> None:
    choice = request.args.get("lang")
    if choice in SUPPORTED_LOCALES and not current_app.session_interface.is_null_session(session):
        session[LANG_SESSION_KEY] = choice


def make_locale_selector(default: str) -> Callable[[], str]:
    def select_locale() -> str:
        chosen = session.get(LANG_SESSION_KEY)
        if chosen in SUPPORTED_LOCALES:
            return str(chosen)
        user_locale = getattr(current_user, "locale", None)
        if user_locale in SUPPORTED_LOCALES:
            return str(user_locale)
        return default

    return select_locale


def current_locale() -> str:
    locale = get_locale()
    return locale.language if locale is not None else SUPPORTED_LOCALES[0]


def lang_switch_url(code: str) -> str:
    """The current page in another language (same path and query)."""
    args: dict[str, Any] = {**request.args.to_dict(), "lang": code}
    if request.endpoint and request.url_rule is not None:
        return url_for(request.endpoint, **(request.view_args or {}), **args)
    return url_for("auth.login", **args)


def _template_globals() -> dict[str, Any]:
    code = current_locale()
    others = [(other, LOCALE_NAMES[other]) for other in SUPPORTED_LOCALES if other != code]
    return {
        "html_lang": HTML_LANG.get(code, code),
        "other_locales": others,
        "lang_switch_url": lang_switch_url,
    }


def init_i18n(app: Flask, settings: Settings) -> None:
    app.config["BABEL_DEFAULT_LOCALE"] = settings.web.default_locale
    app.config["BABEL_DEFAULT_TIMEZONE"] = settings.organisation.timezone
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS_DIR)
    Babel(app, locale_selector=make_locale_selector(settings.web.default_locale))
    app.before_request(remember_lang_choice)
    app.context_processor(_template_globals)


def compile_catalogs(directory: Path = TRANSLATIONS_DIR) -> list[Path]:
    """Compile each ``messages.po`` whose ``.mo`` is missing or older (what ``pybabel compile`` does).

    Written to a temporary file and renamed, so parallel test workers never read half a file.
    """
    compiled = []
    for po_path in sorted(directory.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=po_path.parent.parent.name)
        handle_fd, temporary = tempfile.mkstemp(dir=mo_path.parent, suffix=".mo.tmp")
        with os.fdopen(handle_fd, "wb") as out:
            write_mo(out, catalog, use_fuzzy=True)
        Path(temporary).replace(mo_path)
        compiled.append(mo_path)
    return compiled
