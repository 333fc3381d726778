"""The call log: newest calls first, searchable, and one call's summary, timeline and recordings.

Who may read it (docs/web.md, "Roles"): the staff who answer, call back, lead, check or manage calls.
Admins (accounts) and department handlers (cases passed to their department) have no need to.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import DateField, Form, SelectChoice, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from callcenter.services import call_search, calls
from web import labels
from web.auth import roles_required
from web.context import reading, web_context
from web.i18n import current_locale
from web.limits import parse_id
from web.nav import desk_endpoint
from web.number_rules import handled_by_viewer, may_search_partial_numbers, read_number_search
from web.presenters import FULL_NUMBER_ROLES, Display, call_detail, call_row

PAGE_SIZE = 50
CALL_LOG_ROLES = (
    "agent_consultation",
    "agent_complaint",
    "callback_specialist",
    "team_leader",
    "qa",
    "supervisor",
    "complaint_head",
    "manager",
)
# Query arguments that are not part of a search.
NOT_FILTERS = frozenset({"before", "lang"})
WTFORMS_LOCALES = {"zh": "zh", "en": "en"}

bp = Blueprint("calls", __name__)


class CallSearchForm(Form):  # type: ignore[misc]
    """The search above the log: a GET form (it changes nothing, so it carries no CSRF token)."""

    number = StringField(_l("Number"), validators=[Optional(), Length(max=32)])
    name = StringField(_l("Caller name"), validators=[Optional(), Length(max=64)])
    date_from = DateField(_l("From date"), validators=[Optional()])
    date_to = DateField(_l("To date"), validators=[Optional()])
    queue = SelectField(_l("Queue"), choices=[], validate_choice=False, default="")
    agent = SelectField(_l("Agent"), choices=[], validate_choice=False, default="")
    disposition = SelectField(_l("Disposition"), choices=[], default="")
    direction = SelectField(_l("Direction"), choices=[], default="")

    def validate_date_to(self, field: DateField) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_("The end date is before the start date."))

    def validate_queue(self, field: SelectField) -> None:
        _id_or_empty(field)

    def validate_agent(self, field: SelectField) -> None:
        _id_or_empty(field)


def _id_or_empty(field: SelectField) -> None:
    if field.data and not str(field.data).isdigit():
        raise ValidationError(_("Not a valid choice."))


def search_form() -> CallSearchForm:
    # WTForms' own messages ("not a valid date") in the page's language, as Flask-WTF does for its forms.
    form = CallSearchForm(request.args, meta={"locales": [WTFORMS_LOCALES.get(current_locale(), "en")]})
    any_value = [SelectChoice("", _("Any"))]
    form.disposition.choices = any_value + [
        SelectChoice(code, str(text)) for code, text in labels.DISPOSITIONS.items()
    ]
    form.direction.choices = any_value + [
        SelectChoice(code, str(text)) for code, text in labels.DIRECTIONS.items()
    ]
    with reading() as session:
        queues = call_search.queue_choices(session, current_locale())
        agents = call_search.agent_choices(session)
    form.queue.choices = any_value + [SelectChoice(str(choice.id), choice.label) for choice in queues]
    form.agent.choices = any_value + [SelectChoice(str(choice.id), choice.label) for choice in agents]
    return form


def call_filter(form: CallSearchForm) -> call_search.CallFilter | None:
    """The search the form asks for, or None with the problem added to the form's errors."""
    settings = web_context().settings
    number = read_number_search(form.number.data, settings.organisation.phone_region)
    if number.error is not None:
        form.number.errors.append(number.error)
        return None
    start, end = call_search.day_range(form.date_from.data, form.date_to.data, settings.zone)
    return call_search.CallFilter(
        number=number.pattern,
        name=(form.name.data or "").strip(),
        start=start,
        end=end,
        queue_id=parse_id(form.queue.data),
        agent_id=parse_id(form.agent.data),
        disposition=form.disposition.data or None,
        direction=form.direction.data or None,
    )


def display_for_viewer(*, detail: bool, handling: bool = False) -> Display:
    """Numbers are always masked in lists; on a call's page they are shown to roles with a need to know
    and to the agent who handled the call (the handling context, REQUIREMENTS G65)."""
    settings = web_context().settings
    return Display(
        zone=settings.zone,
        region=settings.organisation.phone_region,
        locale=current_locale(),
        reveal_numbers=detail and (handling or current_user.has_role(*FULL_NUMBER_ROLES)),
    )


@bp.get("/")
def home() -> ResponseReturnValue:
    """The user's desk (``web/nav.py:DESKS``); a plain welcome page when their roles open no page."""
    endpoint = desk_endpoint()
    if endpoint is not None:
        return redirect(url_for(endpoint))
    return render_template("home.html")


def _filter_args() -> dict[str, Any]:
    return {key: value for key, value in request.args.items() if key not in NOT_FILTERS and value}


@bp.get("/calls")
@roles_required(*CALL_LOG_ROLES)
def index() -> ResponseReturnValue:
    before = parse_id(request.args.get("before"))
    form = search_form()
    found = call_filter(form) if form.validate() else None
    display = display_for_viewer(detail=False)
    rows = []
    total = 0
    if found is not None:
        with reading() as session:
            matches = call_search.search_calls(session, found, limit=PAGE_SIZE + 1, before_id=before)
            rows = [call_row(call, display) for call in matches[:PAGE_SIZE]]
            total = call_search.count_calls(session, found)
        more = len(matches) > PAGE_SIZE
    else:
        more = False
    args = _filter_args()
    older = url_for("calls.index", **args, before=rows[-1].id) if more else None
    newest = url_for("calls.index", **args) if before is not None else None
    return render_template(
        "calls/index.html",
        rows=rows,
        form=form,
        searching=found is not None and not found.empty,
        older_url=older,
        newest_url=newest,
        total=total,
        partial_numbers=may_search_partial_numbers(),
    )


def _handled_by_viewer(call_id: int) -> bool:
    with reading() as session:
        return handled_by_viewer(session, call_id)


@bp.get("/calls/<int:call_id>")
@roles_required(*CALL_LOG_ROLES)
def detail(call_id: int) -> ResponseReturnValue:
    display = display_for_viewer(detail=True, handling=_handled_by_viewer(call_id))
    with reading() as session:
        call = call_detail(calls.get_call(session, call_id), display)
    return render_template("calls/detail.html", call=call, numbers_revealed=display.reveal_numbers)


@bp.get("/calls/<channel>/<external_id>")
@roles_required(*CALL_LOG_ROLES)
def by_key(channel: str, external_id: str) -> ResponseReturnValue:
    """A call by its natural key (Asterisk linkedid = ``CC_CALL_ID``, Twilio CallSid)."""
    with reading() as session:
        call_id = calls.id_for_key(session, channel, external_id)
    if call_id is None:
        abort(404)
    return redirect(url_for("calls.detail", call_id=call_id))
