"""Cases (工单): the list and search, a new case (from a call or by hand), a case's page and its actions.

Thin routes: each parses its form, calls one service function and renders or redirects; the actions on
one case live in ``web/case_actions.py``. Who may do what is the service's decision
(``allowed_actions``); the page shows only those forms, and a refused POST is a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import false, select
from sqlalchemy.orm import Session

from callcenter.exceptions import NotFound
from callcenter.models import AuditLog, Call, CaseAttachment, Queue
from callcenter.phone import mask
from callcenter.services import case_search, cases
from callcenter.services.cases import CaseError, CaseForbidden
from web import case_forms
from web.auth import roles_required
from web.case_actions import ACTIONS, action_forms
from web.case_context import (
    CLOCK_KEY,
    category_choices,
    department_names,
    display,
    local_instant,
    now,
    policy,
    store,
    user_names,
    viewer,
)
from web.case_presenters import case_detail, case_row, notice_row, reveals_numbers
from web.context import reading, web_context
from web.i18n import current_locale
from web.limits import parse_id
from web.number_rules import read_number_search, sees_call_numbers
from web.paging import mapped, paginate

bp = Blueprint("cases", __name__, url_prefix="/cases")
PAGE_SIZE = 50


def install(app: Flask, clock: Callable[[], datetime]) -> None:
    app.extensions[CLOCK_KEY] = clock
    app.register_blueprint(bp)


# --- list and search -------------------------------------------------------------------------------


def _filter(form: case_forms.SearchForm) -> case_search.CaseFilter | None:
    """The search the form asks for, or None with the problem added to the form's errors."""
    number = read_number_search(form.number.data, web_context().settings.organisation.phone_region)
    if number.error is not None:
        form.number.errors.append(number.error)
        return None
    agent = form.agent.data
    return case_search.CaseFilter(
        text=form.q.data or "",
        number=number.pattern,
        date_from=form.date_from.data,
        date_to=form.date_to.data,
        queue=form.queue.data or "",
        agent_id=parse_id(agent),
        status=form.status.data or "",
        case_type=form.case_type.data or "",
        delayed=bool(form.delayed.data),
        dissatisfied=bool(form.dissatisfied.data),
        major=bool(form.major.data),
    )


@bp.get("")
@roles_required(*cases.CASE_ROLES)
def index() -> ResponseReturnValue:
    form = case_forms.SearchForm(request.args)
    shown = display()
    settings = web_context().settings
    with reading() as session:
        zh = current_locale() == "zh"
        queues = [
            (q.name, (q.title_zh if zh else q.title_en) or q.name) for q in session.scalars(select(Queue))
        ]
        form.fill_choices(queues, [(str(a.id), a.name) for a in case_search.agents(session)])
        wanted = _filter(form) if form.validate() else case_search.CaseFilter()
        user = viewer(session)
        query = case_search.listing(wanted or case_search.CaseFilter(), viewer=user, zone=settings.zone)
        if wanted is None:  # a refused search lists nothing
            query = query.where(false())
        found = paginate(session, query, size=PAGE_SIZE)
        names = department_names()
        page = mapped(found, [case_row(case, shown, policy(), names) for case in found.items])
        unread = len(cases.unread_notices(session, user.id))
    may_create = current_user.has_role(*cases.CREATE_ROLES)
    return render_template(
        "cases/index.html", form=form, rows=page.items, page=page, unread=unread, may_create=may_create
    )


# --- a new case ------------------------------------------------------------------------------------


def _prefill_from_call(session: Session, form: case_forms.NewCaseForm, call_id: int) -> str:
    """Fill the form from the call; returns the number masked when this viewer may not see it in full
    (then the field stays empty and the case takes the call's number), else ""."""
    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(f"call {call_id}")
    form.call_id.data = str(call.id)
    form.channel.data = "phone"
    form.contact_name.data = call.caller_name or (call.caller.name if call.caller else "")
    number = _call_number(call)
    complaint = call.queue_name == "complaint" or call.ivr_branch == "complaint"
    form.case_type.data = "complaint" if complaint else "consultation"
    if sees_call_numbers(session, call.id):
        form.contact_number.data = number
        return ""
    return mask(number, web_context().settings.organisation.phone_region)


def _call_number(call: Call) -> str:
    return call.from_e164 or call.from_raw


def _new_case(form: case_forms.NewCaseForm, session: Session) -> cases.NewCase:
    call_id = parse_id(form.call_id.data)
    call = session.get(Call, call_id) if call_id is not None else None
    if call_id is not None and call is None:
        raise NotFound(f"call {call_id}")
    return cases.NewCase(
        case_type=form.case_type.data,
        channel=form.channel.data,
        title=form.title.data,
        content=form.content.data or "",
        category=form.category.data,
        complexity=form.complexity.data,
        urgency=form.urgency.data,
        contact_name=form.contact_name.data or "",
        contact_number=form.contact_number.data or (_call_number(call) if call is not None else ""),
        contact_other=form.contact_other.data or "",
        persons_involved=form.persons_involved.data or "",
        caller_id=call.caller_id if call is not None else None,
        agent_id=call.agent_id if call is not None else None,
        queue_name=call.queue_name if call is not None else None,
        call_ids=[call.id] if call is not None else [],
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*cases.CREATE_ROLES)
def new() -> ResponseReturnValue:
    """The new-case form; ``?call_id=N`` prefills it from that call (the agent console links here)."""
    form = case_forms.NewCaseForm()
    form.fill_choices(category_choices())
    masked_number = ""
    if request.method == "GET":
        form.category.data = "other"
        call_id = parse_id(request.args.get("call_id"))
        if call_id is not None:
            with reading() as session:
                masked_number = _prefill_from_call(session, form, call_id)
    elif form.validate_on_submit():
        try:
            with web_context().db.transaction() as session:
                user = viewer(session)
                case = cases.register_case(
                    session, _new_case(form, session), user=user, policy=policy(), now=now()
                )
                if form.promised_reply_at.data is not None:
                    at = local_instant(form.promised_reply_at.data)
                    cases.promise_reply(session, case.id, at=at, user=user, now=now())
                case_id, number = case.id, case.number
        except CaseForbidden:
            abort(403)
        except CaseError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Case %(number)s registered.", number=number), "info")
            return redirect(url_for("cases.detail", case_id=case_id))
    return render_template("cases/new.html", form=form, masked_number=masked_number)


# --- one case --------------------------------------------------------------------------------------


@bp.get("/<int:case_id>")
@roles_required(*cases.CASE_ROLES)
def detail(case_id: int) -> ResponseReturnValue:
    with reading() as session:
        user = viewer(session)
        case = cases.get_case(session, case_id)
        if not cases.can_view(user, case):
            abort(403)
        allowed = cases.allowed_actions(user, case)
        shown = display(reveal=reveals_numbers(user, case))
        view = case_detail(case, shown, policy(), department_names(), user_names(session), now())
        forms = action_forms(allowed, case)
    return render_template("cases/detail.html", case=view, forms=forms, allowed=allowed)


@bp.post("/<int:case_id>/<action>")
@roles_required(*cases.CASE_ROLES)
def act(case_id: int, action: str) -> ResponseReturnValue:
    handler = ACTIONS.get(action)
    if handler is None:
        abort(404)
    return handler(case_id)


@bp.get("/<int:case_id>/attachments/<int:attachment_id>")
@roles_required(*cases.CASE_ROLES)
def attachment(case_id: int, attachment_id: int) -> ResponseReturnValue:
    """Download evidence: only for those who may see the case; every download is audit-logged."""
    with web_context().db.transaction() as session:
        user = viewer(session)
        case = cases.get_case(session, case_id)
        found = session.get(CaseAttachment, attachment_id)
        if found is None or found.case_id != case.id:
            abort(404)
        if not cases.can_view(user, case):
            abort(403)
        session.add(
            AuditLog(
                at=now(), user_id=user.id, username=user.username, action="case.attachment.download",
                object_type="case_attachment", object_id=str(found.id), remote_addr=request.remote_addr or "",
                data={"case": case.number, "sha256": found.sha256},
            )
        )  # fmt: skip
        path, filename = store().path(found.uri), found.filename
    if not path.is_file():
        abort(404)
    # Always a download, never rendered by the browser: an uploaded HTML file must not run on our site.
    return send_file(path, mimetype="application/octet-stream", as_attachment=True, download_name=filename)


# --- notices ---------------------------------------------------------------------------------------


@bp.get("/notices")
@roles_required(*cases.CASE_ROLES)
def notices() -> ResponseReturnValue:
    shown = display()
    with reading() as session:
        rows = [notice_row(notice, shown) for notice in cases.unread_notices(session, current_user.id)]
    return render_template("cases/notices.html", rows=rows, form=case_forms.NoteForm())


@bp.post("/notices/<int:notice_id>/read")
@roles_required(*cases.CASE_ROLES)
def notice_read(notice_id: int) -> ResponseReturnValue:
    if not case_forms.NoteForm().validate():
        abort(400)
    with web_context().db.transaction() as session:
        cases.mark_notice_read(session, notice_id, user_id=current_user.id, now=now())
    return redirect(url_for("cases.notices"))
