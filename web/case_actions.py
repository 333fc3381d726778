"""The actions on one case: a form per action (shown on the page, read back by the POST) and a handler
that calls one service operation in one transaction, then goes back to the case."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import abort, flash, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from callcenter.models import Case, User
from callcenter.services import cases
from callcenter.services.cases import CaseError, CaseForbidden
from web import case_forms, case_labels
from web.case_context import (
    category_choices,
    department_choices,
    department_names,
    local_end_of_day,
    local_instant,
    now,
    policy,
    store,
    viewer,
)
from web.context import web_context

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


def action_forms(allowed: frozenset[str], case: Case | None = None) -> dict[str, Any]:
    """The forms of the ``allowed`` actions; on the case's page (``case`` given) each edit form opens
    with the case's current values, so saving it unchanged changes nothing."""
    forms = {name: factory() for name, factory in FORMS.items() if name in allowed}
    if case is not None:
        for name, form in forms.items():
            current = _current_values(name, case)
            for field_name, value in current.items():
                if value is not None and value != "":
                    getattr(form, field_name).data = value
        if "redispatch" in forms:  # to another department: the case's own is no choice
            field = forms["redispatch"].department
            field.choices = [choice for choice in field.choices if choice.value != case.department]
    return forms


def _current_values(action: str, case: Case) -> dict[str, Any]:
    """What each edit form shows before the user changes anything."""
    zone = web_context().settings.zone
    promised = case.promised_reply_at
    values: dict[str, dict[str, Any]] = {
        "classify": {"category": case.category, "complexity": case.complexity, "urgency": case.urgency},
        "assign": {"department": case.department},
        "submit_solution": {"solution": case.solution, "remedy": case.remedy},
        "follow_up": {"follow_up": case.follow_up, "follow_up_date": case.follow_up_date},
        "extend": {"new_due": case.resolution_due_at.astimezone(zone).date()},
        "promise": {
            "at": promised.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
            if promised
            else None
        },
    }
    return values.get(action, {})


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
