"""Admin pages (role ``admin``): accounts, agents, queues, the departments from settings, the audit log.

Thin views: each parses its form, calls one service (``services/admin.py``, ``services/staffing.py``)
in a write transaction with the acting admin, and renders. The services hold the rules and write the
audit log; their refusals come back as ``AdminError`` and are shown under the field they concern.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import SelectChoice

from callcenter.models import Queue
from callcenter.services import admin, staffing
from callcenter.services.admin import AccountFields, Actor, AdminError
from callcenter.services.staffing import AgentFields, QueueFields
from web.admin_forms import (
    ROLE_LABELS,
    SKILL_LABELS,
    AccountForm,
    AgentForm,
    NewAccountForm,
    NewQueueForm,
    PasswordForm,
    QueueForm,
    optional_text,
    show_error,
)
from web.auth import roles_required
from web.context import reading, web_context
from web.i18n import current_locale
from web.labels import AUDIT_ACTIONS, AUDIT_OBJECTS, audit_details, label
from web.paging import mapped, paginate

bp = Blueprint("admin", __name__, url_prefix="/admin")
ADMIN = "admin"
AUDIT_PAGE_SIZE = 100
AUDITED = ("admin.", "auth.")  # what the audit page lists: admin changes and sign-in lockouts


def actor() -> Actor:
    return Actor(
        user_id=current_user.id, username=current_user.username, remote_addr=request.remote_addr or ""
    )


def department_codes() -> list[str]:
    return [department.code for department in web_context().settings.departments]


def department_name(code: str | None) -> str:
    for department in web_context().settings.departments:
        if department.code == code:
            return department.name_zh if current_locale() == "zh" else department.name_en
    return code or ""


def apply(form: FlaskForm, change: Callable[[Session], object]) -> bool:
    """Run ``change`` in one write transaction; a refusal goes under its field and nothing is written."""
    try:
        with web_context().db.transaction() as session:
            change(session)
    except AdminError as exc:
        show_error(form, exc)
        return False
    return True


def _department_choices(form: AccountForm) -> None:
    form.department.choices = [SelectChoice("", _("None"))] + [
        SelectChoice(code, department_name(code)) for code in department_codes()
    ]


def _account_fields(form: AccountForm) -> AccountFields:
    return AccountFields(
        display_name=form.display_name.data or "",
        roles=frozenset(form.roles.data or ()),
        department=form.department.data or None,
        is_department_head=bool(form.is_department_head.data),
        locale=form.locale.data or None,
        active=bool(form.active.data),
    )


@bp.get("/")
@roles_required(ADMIN)
def index() -> ResponseReturnValue:
    return redirect(url_for("admin.users"))


@bp.get("/users")
@roles_required(ADMIN)
def users() -> ResponseReturnValue:
    with reading() as session:
        rows = [
            {
                "id": user.id,
                "username": user.username,
                "display_name": user.display_name,
                "roles": ", ".join(str(ROLE_LABELS.get(role, role)) for role in sorted(user.roles)),
                "department": department_name(user.department),
                "head": user.is_department_head,
                "agent": user.agent.name if user.agent is not None else "",
                "active": user.active,
            }
            for user in admin.list_accounts(session)
        ]
    return render_template("admin/users.html", rows=rows, section="users")


@bp.route("/users/new", methods=["GET", "POST"])
@roles_required(ADMIN)
def new_user() -> ResponseReturnValue:
    form = NewAccountForm()
    _department_choices(form)
    settings = web_context().settings
    if form.validate_on_submit():
        fields = _account_fields(form)

        def create(session: Session) -> None:
            admin.create_account(
                session,
                actor(),
                form.username.data,
                form.password.data,
                fields,
                departments=department_codes(),
                min_password_length=settings.accounts.min_password_length,
                now=web_context().clock(),
            )

        if apply(form, create):
            flash(_("Account %(name)s created.", name=form.username.data.strip()), "info")
            return redirect(url_for("admin.users"))
    return render_template(
        "admin/user_new.html", form=form, section="users", min_length=settings.accounts.min_password_length
    )


def _account_data(user_id: int) -> dict[str, Any]:
    with reading() as session:
        try:
            user = admin.get_account(session, user_id)
        except AdminError:
            abort(404)
        return {
            "username": user.username,
            "display_name": user.display_name,
            "roles": sorted(user.roles),
            "department": user.department or "",
            "is_department_head": user.is_department_head,
            "locale": user.locale or "",
            "active": user.active,
        }


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@roles_required(ADMIN)
def edit_user(user_id: int) -> ResponseReturnValue:
    data = _account_data(user_id)
    form = AccountForm(data=data)
    _department_choices(form)
    if form.validate_on_submit():
        fields = _account_fields(form)

        def update(session: Session) -> None:
            admin.update_account(
                session, actor(), user_id, fields, departments=department_codes(), now=web_context().clock()
            )

        if apply(form, update):
            flash(_("Account %(name)s saved.", name=data["username"]), "info")
            return redirect(url_for("admin.users"))
    return _user_page(user_id, data["username"], form, PasswordForm(formdata=None))


def _user_page(
    user_id: int, username: str, form: AccountForm, password_form: PasswordForm
) -> ResponseReturnValue:
    return render_template(
        "admin/user_edit.html",
        form=form,
        password_form=password_form,
        user_id=user_id,
        username=username,
        section="users",
        min_length=web_context().settings.accounts.min_password_length,
    )


@bp.post("/users/<int:user_id>/password")
@roles_required(ADMIN)
def reset_password(user_id: int) -> ResponseReturnValue:
    data = _account_data(user_id)
    password_form = PasswordForm()
    if password_form.validate_on_submit():
        settings = web_context().settings

        def reset(session: Session) -> None:
            admin.reset_password(
                session,
                actor(),
                user_id,
                password_form.password.data,
                min_password_length=settings.accounts.min_password_length,
                now=web_context().clock(),
            )

        if apply(password_form, reset):
            flash(_("New password set for %(name)s.", name=data["username"]), "info")
            return redirect(url_for("admin.edit_user", user_id=user_id))
    form = AccountForm(formdata=None, data=data)
    _department_choices(form)
    return _user_page(user_id, data["username"], form, password_form)


@bp.get("/departments")
@roles_required(ADMIN)
def departments() -> ResponseReturnValue:
    with reading() as session:
        handlers = {
            code: [(user.display_name or user.username, user.is_department_head) for user in found]
            for code, found in admin.handlers_by_department(session).items()
        }
    rows = [
        {
            "code": department.code,
            "name_zh": department.name_zh,
            "name_en": department.name_en,
            "asterisk": f"{department.asterisk_exten}@{department.asterisk_context}",
            "twilio": department.twilio_number,
            "handlers": handlers.get(department.code, []),
        }
        for department in web_context().settings.departments
    ]
    return render_template("admin/departments.html", rows=rows, section="departments")


@bp.get("/audit")
@roles_required(ADMIN)
def audit() -> ResponseReturnValue:
    zone = web_context().settings.zone
    with reading() as session:
        found = paginate(session, admin.audit_query(AUDITED), size=AUDIT_PAGE_SIZE)
        rows = [
            {
                "at": row.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                "who": row.username,
                "address": row.remote_addr,
                "action": label(AUDIT_ACTIONS, row.action),
                "code": row.action,
                "object": f"{label(AUDIT_OBJECTS, row.object_type)} {row.object_id}",
                "data": audit_details(row.data),
            }
            for row in found.items
        ]
    return render_template("admin/audit.html", rows=rows, page=mapped(found, rows), section="audit")


# --- agents and queues ------------------------------------------------------------------------------


def _queue_title(queue: Queue) -> str:
    title = queue.title_zh if current_locale() == "zh" else queue.title_en
    return title or queue.name


def _agent_choices(form: AgentForm, agent_id: int | None) -> None:
    with reading() as session:
        form.queue_ids.choices = [
            SelectChoice(
                queue.id,
                queue.title_zh
                if current_locale() == "zh" and queue.title_zh
                else queue.title_en or queue.name,
            )
            for queue in staffing.list_queues(session)
        ]
        accounts = admin.list_accounts(session)
        form.user_id.choices = [SelectChoice("", _("None"))] + [
            SelectChoice(str(user.id), f"{user.username} ({user.display_name})")
            for user in accounts
            if user.agent is None or user.agent.id == agent_id
        ]


def _agent_fields(form: AgentForm) -> AgentFields:
    return AgentFields(
        name=form.name.data or "",
        extension=optional_text(form.extension.data),
        twilio_identity=optional_text(form.twilio_identity.data),
        skill_level=form.skill_level.data,
        team=(form.team.data or "").strip(),
        queue_ids=frozenset(form.queue_ids.data or ()),
        user_id=int(form.user_id.data) if form.user_id.data else None,
        active=bool(form.active.data),
    )


@bp.get("/agents")
@roles_required(ADMIN)
def agents() -> ResponseReturnValue:
    with reading() as session:
        rows = [
            {
                "id": agent.id,
                "name": agent.name,
                "extension": agent.extension or "",
                "twilio_identity": agent.twilio_identity or "",
                "skill": str(SKILL_LABELS.get(agent.skill_level, agent.skill_level)),
                "team": agent.team,
                "queues": ", ".join(_queue_title(queue) for queue in agent.queues),
                "account": agent.user.username if agent.user is not None else "",
                "active": agent.active,
            }
            for agent in staffing.list_agents(session)
        ]
    return render_template("admin/agents.html", rows=rows, section="agents")


@bp.route("/agents/new", methods=["GET", "POST"], defaults={"agent_id": None})
@bp.route("/agents/<int:agent_id>", methods=["GET", "POST"])
@roles_required(ADMIN)
def edit_agent(agent_id: int | None) -> ResponseReturnValue:
    data: dict[str, Any] = {"skill_level": "junior", "active": True}
    if agent_id is not None:
        with reading() as session:
            try:
                agent = staffing.get_agent(session, agent_id)
            except AdminError:
                abort(404)
            data = {
                "name": agent.name,
                "extension": agent.extension or "",
                "twilio_identity": agent.twilio_identity or "",
                "skill_level": agent.skill_level,
                "team": agent.team,
                "queue_ids": [queue.id for queue in agent.queues],
                "user_id": str(agent.user_id or ""),
                "active": agent.active,
            }
    form = AgentForm(data=data)
    _agent_choices(form, agent_id)
    if form.validate_on_submit():
        fields, now = _agent_fields(form), web_context().clock()

        def save(session: Session) -> None:
            if agent_id is None:
                staffing.create_agent(session, actor(), fields, now=now)
            else:
                staffing.update_agent(session, actor(), agent_id, fields, now=now)

        if apply(form, save):
            flash(_("Agent %(name)s saved.", name=fields.name.strip()), "info")
            return redirect(url_for("admin.agents"))
    return render_template("admin/agent_form.html", form=form, agent_id=agent_id, section="agents")


def _queue_choices(form: QueueForm) -> None:
    with reading() as session:
        form.agent_ids.choices = [
            SelectChoice(agent.id, agent.name) for agent in staffing.list_agents(session)
        ]


def _queue_fields(form: QueueForm) -> QueueFields:
    return QueueFields(
        title_zh=(form.title_zh.data or "").strip(),
        title_en=(form.title_en.data or "").strip(),
        agent_ids=frozenset(form.agent_ids.data or ()),
    )


@bp.get("/queues")
@roles_required(ADMIN)
def queues() -> ResponseReturnValue:
    with reading() as session:
        rows = [
            {
                "id": queue.id,
                "name": queue.name,
                "title_zh": queue.title_zh,
                "title_en": queue.title_en,
                "agents": ", ".join(agent.name for agent in queue.agents),
            }
            for queue in staffing.list_queues(session)
        ]
    return render_template("admin/queues.html", rows=rows, section="queues")


@bp.route("/queues/new", methods=["GET", "POST"])
@roles_required(ADMIN)
def new_queue() -> ResponseReturnValue:
    form = NewQueueForm()
    _queue_choices(form)
    if form.validate_on_submit():
        fields, now = _queue_fields(form), web_context().clock()
        if apply(
            form, lambda session: staffing.create_queue(session, actor(), form.name.data, fields, now=now)
        ):
            flash(_("Queue %(name)s created.", name=form.name.data.strip()), "info")
            return redirect(url_for("admin.queues"))
    return render_template("admin/queue_form.html", form=form, queue_name=None, section="queues")


@bp.route("/queues/<int:queue_id>", methods=["GET", "POST"])
@roles_required(ADMIN)
def edit_queue(queue_id: int) -> ResponseReturnValue:
    with reading() as session:
        try:
            queue = staffing.get_queue(session, queue_id)
        except AdminError:
            abort(404)
        name = queue.name
        data = {
            "title_zh": queue.title_zh,
            "title_en": queue.title_en,
            "agent_ids": [a.id for a in queue.agents],
        }
    form = QueueForm(data=data)
    _queue_choices(form)
    if form.validate_on_submit():
        fields, now = _queue_fields(form), web_context().clock()
        if apply(form, lambda session: staffing.update_queue(session, actor(), queue_id, fields, now=now)):
            flash(_("Queue %(name)s saved.", name=name), "info")
            return redirect(url_for("admin.queues"))
    return render_template(
        "admin/queue_form.html", form=form, queue_name=name, queue_id=queue_id, section="queues"
    )
