"""Cases (工单): the list and search, a new case (from a call or by hand), a case's page and its actions.

Thin routes: each parses its form, calls one service function in one transaction and redirects back to
the case. Who may do what is the service's decision (``allowed_actions``); the page shows only those
forms, and a refused POST is a 403.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.exceptions import NotFound
from callcenter.models import AuditLog, Call, CaseAttachment, Queue, User
from callcenter.services import case_search, cases
from callcenter.services.cases import CaseError, CaseForbidden
from web import case_forms, case_labels
from web.auth import roles_required
from web.case_presenters import case_detail, case_row, notice_row, reveals_numbers
from web.context import reading, web_context
from web.i18n import current_locale
from web.presenters import Display

bp = Blueprint("cases", __name__, url_prefix="/cases")
CLOCK_KEY = "callcenter.cases.clock"
ATTACHMENTS_DIR = "case-attachments"


def install(app: Flask, clock: Callable[[], datetime]) -> None:
    app.extensions[CLOCK_KEY] = clock
    app.register_blueprint(bp)


# --- wiring ----------------------------------------------------------------------------------------


def now() -> datetime:
    clock: Callable[[], datetime] = current_app.extensions[CLOCK_KEY]
    return clock()


def policy() -> cases.CasePolicy:
    return cases.CasePolicy.from_settings(web_context().settings)


def department_names() -> dict[str, tuple[str, str]]:
    return {d.code: (d.name_zh, d.name_en) for d in web_context().settings.departments}


def department_choices() -> list[tuple[str, str]]:
    zh = current_locale() == "zh"
    return [(code, names[0] if zh else names[1]) for code, names in department_names().items()]


def category_choices() -> list[tuple[str, str]]:
    zh = current_locale() == "zh"
    return [(c.code, c.name_zh if zh else c.name_en) for c in policy().rules.categories]


def store() -> cases.AttachmentStore:
    settings = web_context().settings
    root = settings.path(settings.storage.var_dir) / ATTACHMENTS_DIR
    return cases.AttachmentStore(root, settings.cases.attachment_max_mb * 1_000_000)


def display(*, reveal: bool = False) -> Display:
    settings = web_context().settings
    return Display(settings.zone, settings.organisation.phone_region, current_locale(), reveal)


def viewer(session: Session) -> User:
    user = session.get(User, current_user.id)
    if user is None:
        abort(403)
    return user


def user_names(session: Session) -> dict[int, str]:
    rows = session.execute(select(User.id, User.display_name, User.username)).all()
    return {row.id: row.display_name or row.username for row in rows}


def local_end_of_day(day: date) -> datetime:
    return cases.end_of_day(day, web_context().settings.zone)


def local_instant(moment: datetime) -> datetime:
    return moment.replace(tzinfo=web_context().settings.zone)


# --- list and search -------------------------------------------------------------------------------


def _filter(form: case_forms.SearchForm) -> case_search.CaseFilter:
    agent = form.agent.data
    return case_search.CaseFilter(
        text=form.q.data or "",
        number=form.number.data or "",
        date_from=form.date_from.data,
        date_to=form.date_to.data,
        queue=form.queue.data or "",
        agent_id=int(agent) if agent and agent.isdigit() else None,
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
        found = case_search.search_cases(
            session, wanted, viewer=user, zone=settings.zone, region=settings.organisation.phone_region
        )
        rows = [case_row(case, shown, policy(), department_names()) for case in found]
        unread = len(cases.unread_notices(session, user.id))
    may_create = current_user.has_role(*cases.CREATE_ROLES)
    return render_template("cases/index.html", form=form, rows=rows, unread=unread, may_create=may_create)


# --- a new case ------------------------------------------------------------------------------------


def _prefill_from_call(session: Session, form: case_forms.NewCaseForm, call_id: int) -> None:
    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(f"call {call_id}")
    form.call_id.data = str(call.id)
    form.channel.data = "phone"
    form.contact_name.data = call.caller_name or (call.caller.name if call.caller else "")
    form.contact_number.data = call.from_e164 or call.from_raw
    complaint = call.queue_name == "complaint" or call.ivr_branch == "complaint"
    form.case_type.data = "complaint" if complaint else "consultation"


def _new_case(form: case_forms.NewCaseForm, session: Session) -> cases.NewCase:
    call_id = int(form.call_id.data) if (form.call_id.data or "").isdigit() else None
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
        contact_number=form.contact_number.data or "",
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
    if request.method == "GET":
        form.category.data = "other"
        call_id = request.args.get("call_id", type=int)
        if call_id is not None:
            with reading() as session:
                _prefill_from_call(session, form, call_id)
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
    return render_template("cases/new.html", form=form)


# --- one case --------------------------------------------------------------------------------------


def _classify_form() -> case_forms.ClassifyForm:
    form = case_forms.ClassifyForm(prefix="classify")
    form.category.choices = case_forms.options(category_choices())
    form.complexity.choices = case_forms.choices(case_labels.COMPLEXITIES)
    form.urgency.choices = case_forms.choices(case_labels.URGENCIES)
    return form


def _department_form(prefix: str) -> case_forms.DepartmentForm:
    form = case_forms.DepartmentForm(prefix=prefix)
    form.department.choices = case_forms.options(department_choices())
    return form


def _solution_form() -> case_forms.SolutionForm:
    form = case_forms.SolutionForm(prefix="solution")
    form.remedy.choices = case_forms.choices(case_labels.REMEDIES)
    return form


def _audit_form() -> case_forms.DecisionForm:
    form = case_forms.DecisionForm(prefix="audit")
    form.fill_choices(_("Passed"), _("Not passed"))
    return form


def _approval_form() -> case_forms.DecisionForm:
    form = case_forms.DecisionForm(prefix="approve")
    form.fill_choices(_("Approve"), _("Reject"))
    return form


def _callback_form() -> case_forms.CallbackForm:
    form = case_forms.CallbackForm(prefix="callback")
    form.outcome.choices = case_forms.choices(case_labels.CALLBACK_OUTCOMES)
    return form


def _follow_up_form() -> case_forms.FollowUpForm:
    form = case_forms.FollowUpForm(prefix="follow")
    form.follow_up.choices = case_forms.choices(case_labels.FOLLOW_UPS, blank=_l("None"))
    return form


# One form per action: the page shows it, the POST reads it (same prefix, same choices).
FORMS: dict[str, Callable[[], Any]] = {
    "classify": _classify_form,
    "assign": lambda: _department_form("assign"),
    "redispatch": lambda: _department_form("redispatch"),
    "sign_off": lambda: case_forms.NoteForm(prefix="sign_off"),
    "submit_solution": _solution_form,
    "approve_solution": _approval_form,
    "audit_reply": _audit_form,
    "complete_callback": _callback_form,
    "extend": lambda: case_forms.ExtendForm(prefix="extend"),
    "follow_up": _follow_up_form,
    "promise": lambda: case_forms.PromiseForm(prefix="promise"),
    "attach": lambda: case_forms.AttachmentForm(prefix="attach"),
    "link_call": lambda: case_forms.LinkCallForm(prefix="link"),
    **{
        name: functools.partial(case_forms.NoteForm, prefix=name)
        for name in ("send_reply", "close", "reopen", "escalate", "first_reply")
    },
}


def _action_forms(allowed: frozenset[str]) -> dict[str, Any]:
    return {name: factory() for name, factory in FORMS.items() if name in allowed}


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
        forms = _action_forms(allowed)
    return render_template("cases/detail.html", case=view, forms=forms, allowed=allowed)


def _act(case_id: int, operation: Callable[[Session, User], object], done: str) -> ResponseReturnValue:
    """Run one operation on the case for the signed-in user and go back to the case's page."""
    try:
        with web_context().db.transaction() as session:
            user = viewer(session)
            if not cases.can_view(user, cases.get_case(session, case_id)):
                abort(403)
            operation(session, user)
    except CaseForbidden:
        abort(403)
    except CaseError as exc:
        flash(str(exc), "error")
    else:
        flash(done, "info")
    return redirect(url_for("cases.detail", case_id=case_id))


def _invalid(case_id: int, form: Any) -> ResponseReturnValue:
    for field_name, errors in form.errors.items():
        field = form._fields.get(field_name)
        title = field.label.text if field is not None else field_name
        for error in errors:
            flash(f"{title}: {error}", "error")
    return redirect(url_for("cases.detail", case_id=case_id))


ActionHandler = Callable[[int], ResponseReturnValue]


def _classify(case_id: int) -> ResponseReturnValue:
    form = _classify_form()
    if not form.validate():
        return _invalid(case_id, form)
    return _act(
        case_id,
        lambda s, u: cases.classify(
            s, case_id, category=form.category.data, complexity=form.complexity.data,
            urgency=form.urgency.data, user=u, policy=policy(), now=now(),
        ),
        _("Case classified."),
    )  # fmt: skip


def _assign(case_id: int) -> ResponseReturnValue:
    form = _department_form("assign")
    if not form.validate():
        return _invalid(case_id, form)
    codes = list(department_names())
    return _act(
        case_id,
        lambda s, u: cases.assign(
            s, case_id, department=form.department.data, departments=codes, user=u, now=now()
        ),
        _("Case assigned."),
    )


def _redispatch(case_id: int) -> ResponseReturnValue:
    form = _department_form("redispatch")
    if not form.validate():
        return _invalid(case_id, form)
    codes = list(department_names())
    return _act(
        case_id,
        lambda s, u: cases.redispatch(
            s, case_id, department=form.department.data, reason=form.reason.data or "",
            departments=codes, user=u, now=now(),
        ),
        _("Case re-dispatched."),
    )  # fmt: skip


def _sign_off(case_id: int) -> ResponseReturnValue:
    if not case_forms.NoteForm(prefix="sign_off").validate():
        abort(400)
    return _act(case_id, lambda s, u: cases.sign_off(s, case_id, user=u, now=now()), _("Case signed off."))


def _submit_solution(case_id: int) -> ResponseReturnValue:
    form = _solution_form()
    if not form.validate():
        return _invalid(case_id, form)
    return _act(
        case_id,
        lambda s, u: cases.submit_solution(
            s, case_id, solution=form.solution.data, remedy=form.remedy.data, user=u, now=now()
        ),
        _("Solution submitted for approval."),
    )


def _approve(case_id: int) -> ResponseReturnValue:
    form = _approval_form()
    if not form.validate():
        return _invalid(case_id, form)
    approve = form.decision.data == "approve"
    return _act(
        case_id,
        lambda s, u: cases.decide_solution(
            s, case_id, approve=approve, note=form.note.data or "", user=u, now=now()
        ),
        _("Solution approved.") if approve else _("Solution sent back."),
    )


def _audit_reply(case_id: int) -> ResponseReturnValue:
    form = _audit_form()
    if not form.validate():
        return _invalid(case_id, form)
    passed = form.decision.data == "approve"
    return _act(
        case_id,
        lambda s, u: cases.audit_reply(
            s, case_id, passed=passed, note=form.note.data or "", user=u, now=now()
        ),
        _("Reply audit recorded."),
    )


def _note(prefix: str) -> str:
    form = case_forms.NoteForm(prefix=prefix)
    if not form.validate():
        abort(400)
    return str(form.note.data or "")


def _send_reply(case_id: int) -> ResponseReturnValue:
    text = _note("send_reply")
    return _act(
        case_id,
        lambda s, u: cases.send_reply(s, case_id, result=text, user=u, policy=policy(), now=now()),
        _("Reply to the customer recorded."),
    )


def _complete_callback(case_id: int) -> ResponseReturnValue:
    form = _callback_form()
    if not form.validate():
        return _invalid(case_id, form)
    return _act(
        case_id,
        lambda s, u: cases.complete_callback(
            s, case_id, outcome=form.outcome.data, satisfaction=form.satisfaction.data, user=u,
            now=now(), policy=policy(),
        ),
        _("Complaint callback recorded."),
    )  # fmt: skip


def _close(case_id: int) -> ResponseReturnValue:
    text = _note("close")
    return _act(
        case_id, lambda s, u: cases.close(s, case_id, note=text, user=u, now=now()), _("Case closed.")
    )


def _reopen(case_id: int) -> ResponseReturnValue:
    text = _note("reopen")
    return _act(
        case_id, lambda s, u: cases.reopen(s, case_id, reason=text, user=u, now=now()), _("Case reopened.")
    )


def _escalate(case_id: int) -> ResponseReturnValue:
    text = _note("escalate")
    return _act(
        case_id, lambda s, u: cases.escalate(s, case_id, reason=text, user=u, now=now()), _("Case escalated.")
    )


def _first_reply(case_id: int) -> ResponseReturnValue:
    text = _note("first_reply")
    return _act(
        case_id,
        lambda s, u: cases.record_first_reply(s, case_id, note=text, user=u, now=now()),
        _("First reply recorded."),
    )


def _extend(case_id: int) -> ResponseReturnValue:
    form = case_forms.ExtendForm(prefix="extend")
    if not form.validate():
        return _invalid(case_id, form)
    new_due = local_end_of_day(form.new_due.data)
    return _act(
        case_id,
        lambda s, u: cases.extend_deadline(
            s, case_id, new_due=new_due, reason=form.reason.data, user=u, now=now()
        ),
        _("Deadline extended."),
    )


def _follow_up(case_id: int) -> ResponseReturnValue:
    form = _follow_up_form()
    if not form.validate():
        return _invalid(case_id, form)
    return _act(
        case_id,
        lambda s, u: cases.set_follow_up(
            s, case_id, follow_up=form.follow_up.data or None, follow_up_date=form.follow_up_date.data,
            user=u, now=now(),
        ),
        _("Follow-up recorded."),
    )  # fmt: skip


def _promise(case_id: int) -> ResponseReturnValue:
    form = case_forms.PromiseForm(prefix="promise")
    if not form.validate():
        return _invalid(case_id, form)
    at = local_instant(form.at.data)
    return _act(
        case_id,
        lambda s, u: cases.promise_reply(s, case_id, at=at, user=u, now=now()),
        _("Promised reply recorded."),
    )


def _link_call(case_id: int) -> ResponseReturnValue:
    form = case_forms.LinkCallForm(prefix="link")
    if not form.validate():
        return _invalid(case_id, form)
    return _act(
        case_id,
        lambda s, u: cases.link_call(s, case_id, form.call_id.data, user=u, now=now()),
        _("Call linked."),
    )


def _attach(case_id: int) -> ResponseReturnValue:
    form = case_forms.AttachmentForm(prefix="attach")
    if not form.validate():
        return _invalid(case_id, form)
    upload = form.file.data
    attachments = store()
    content = upload.stream.read(attachments.max_bytes + 1)
    return _act(
        case_id,
        lambda s, u: cases.add_attachment(
            s, case_id, filename=upload.filename or "", content_type=upload.mimetype or "",
            content=content, store=attachments, user=u, now=now(),
        ),
        _("File attached."),
    )  # fmt: skip


ACTIONS: dict[str, ActionHandler] = {
    "classify": _classify,
    "assign": _assign,
    "sign_off": _sign_off,
    "redispatch": _redispatch,
    "submit_solution": _submit_solution,
    "approve_solution": _approve,
    "audit_reply": _audit_reply,
    "send_reply": _send_reply,
    "complete_callback": _complete_callback,
    "close": _close,
    "reopen": _reopen,
    "escalate": _escalate,
    "first_reply": _first_reply,
    "extend": _extend,
    "follow_up": _follow_up,
    "promise": _promise,
    "link_call": _link_call,
    "attach": _attach,
}


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
