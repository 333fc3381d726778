"""The call log: newest calls first, and one call's summary, timeline and recordings."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from callcenter.services import calls
from web.context import reading, web_context
from web.i18n import current_locale
from web.presenters import FULL_NUMBER_ROLES, Display, call_detail, call_row

PAGE_SIZE = 50

bp = Blueprint("calls", __name__)


def display_for_viewer(*, detail: bool) -> Display:
    """Numbers are always masked in lists; on a call's page only roles with a need to know see them."""
    settings = web_context().settings
    return Display(
        zone=settings.zone,
        region=settings.organisation.phone_region,
        locale=current_locale(),
        reveal_numbers=detail and current_user.has_role(*FULL_NUMBER_ROLES),
    )


@bp.get("/")
def home() -> ResponseReturnValue:
    return redirect(url_for("calls.index"))


@bp.get("/calls")
def index() -> ResponseReturnValue:
    before = request.args.get("before", type=int)
    display = display_for_viewer(detail=False)
    with reading() as session:
        found = calls.recent_calls(session, limit=PAGE_SIZE + 1, before_id=before)
        rows = [call_row(call, display) for call in found[:PAGE_SIZE]]
    older = url_for("calls.index", before=rows[-1].id) if len(found) > PAGE_SIZE else None
    newest = url_for("calls.index") if before is not None else None
    return render_template("calls/index.html", rows=rows, older_url=older, newest_url=newest)


@bp.get("/calls/<int:call_id>")
def detail(call_id: int) -> ResponseReturnValue:
    display = display_for_viewer(detail=True)
    with reading() as session:
        call = call_detail(calls.get_call(session, call_id), display)
    return render_template("calls/detail.html", call=call, numbers_revealed=display.reveal_numbers)


@bp.get("/calls/<channel>/<external_id>")
def by_key(channel: str, external_id: str) -> ResponseReturnValue:
    """A call by its natural key (Asterisk linkedid = ``CC_CALL_ID``, Twilio CallSid)."""
    with reading() as session:
        call_id = calls.id_for_key(session, channel, external_id)
    if call_id is None:
        abort(404)
    return redirect(url_for("calls.detail", call_id=call_id))
