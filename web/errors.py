"""Error pages: the same layout as the rest, nothing of the exception shown to the user."""

from __future__ import annotations

from flask import Flask, render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from callcenter.exceptions import NotFound


def _page(status: int, title: str, message: str) -> ResponseReturnValue:
    return render_template("error.html", status=status, title=title, message=message), status


def forbidden(_error: HTTPException) -> ResponseReturnValue:
    return _page(403, _("Access denied"), _("Your role does not give access to this page."))


def not_found(_error: Exception) -> ResponseReturnValue:
    return _page(404, _("Not found"), _("There is nothing at this address."))


def csrf_failed(_error: CSRFError) -> ResponseReturnValue:
    message = _("The form was too old or incomplete. Go back, reload and try again.")
    return _page(400, _("Form expired"), message)


def install_error_pages(app: Flask) -> None:
    app.register_error_handler(403, forbidden)
    app.register_error_handler(404, not_found)
    app.register_error_handler(NotFound, not_found)
    app.register_error_handler(CSRFError, csrf_failed)
