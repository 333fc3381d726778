"""What every request must be before a view sees it, for the staff app and Twilio's webhooks alike.

* Bodies are bounded: ``web.max_request_kb`` for every request (``MAX_CONTENT_LENGTH``, and
  ``MAX_FORM_MEMORY_SIZE`` for a form's text), a case attachment's upload ``cases.attachment_max_mb``
  + 1 MB; larger ones get 413 before anything reads them.
* Ids are database integers: the ``int`` converter of the URL map accepts at most ``MAX_ID`` (a larger
  one is 404, like any id that names nothing), and ``parse_id`` reads one from a query or form.
* NUL bytes in the path, the query or a form are refused with 400 (no database stores them).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter, Map

from callcenter.settings import Settings

MAX_ID = 2**31 - 1  # ids are INTEGER columns: 32 bits on PostgreSQL (64 on SQLite)
MB = 1_000_000
ATTACHMENT_ENDPOINT = ("cases.act", "attach")


class IdConverter(IntegerConverter):
    """``<int:…>`` up to ``MAX_ID``: a larger number matches no route (404) instead of reaching SQL."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def parse_id(value: object) -> int | None:
    """A positive database id from text (a query or form value), None for anything else."""
    text = str(value or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_ID)):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def use_id_converter(app: Flask) -> None:
    """Before any route is added: routes are compiled with the converters present then."""
    app.url_map.converters["int"] = IdConverter


def install_limits(app: Flask, settings: Settings) -> None:
    """The staff app's body limits and NUL check: before any other ``before_request`` reads a form."""
    limit = settings.web.max_request_kb * 1024
    upload = max(limit, (settings.cases.attachment_max_mb + 1) * MB)
    bound_bodies(app, limit)

    @app.before_request
    def _attachment_limit() -> None:
        if (request.endpoint, (request.view_args or {}).get("action")) == ATTACHMENT_ENDPOINT:
            request.max_content_length = upload

    refuse_nul(app)


def bound_bodies(app: Flask, limit: int) -> None:
    app.config["MAX_CONTENT_LENGTH"] = limit
    app.config["MAX_FORM_MEMORY_SIZE"] = limit


def refuse_nul(app: Flask) -> None:
    @app.before_request
    def _refuse_nul() -> None:
        if _has_nul((request.view_args or {}).values()) or _has_nul(_pairs(request.args)):
            abort(400)
        if request.method in ("POST", "PUT", "PATCH") and _has_nul(_pairs(request.form)):
            abort(400)


def _pairs(values: Any) -> list[str]:
    return [text for key, value in values.items(multi=True) for text in (key, value)]


def _has_nul(values: Any) -> bool:
    return any(isinstance(value, str) and "\x00" in value for value in values)
