"""Outbound campaigns and the callback screen (D41–D48): list with progress, create from a filter or a
CSV upload, start/pause, the 5-step script, the summary report (回访总结报告), the dialler's audit and
the do-not-call list. Routes parse the form and call one service function each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from callcenter.cli import utc_now
from callcenter.dialler.channels import configured_channel
from callcenter.models import (
    Agent,
    AuditLog,
    CallbackAttempt,
    CallbackResult,
    CallbackTask,
    Caller,
    Campaign,
    CampaignMember,
    DoNotCall,
    User,
)
from callcenter.models.callback import CALLBACK_KINDS
from callcenter.models.caller import TIERS
from callcenter.models.campaign import CAMPAIGN_MODES
from callcenter.models.case import CASE_TYPES
from callcenter.models.user import ROLES
from callcenter.phone import mask
from callcenter.services import callback_results, callback_tasks, campaigns, cases
from web.auth import roles_required
from web.context import reading, web_context

bp = Blueprint("campaigns", __name__)

VIEW_ROLES = ("callback_specialist", "team_leader", "supervisor", "manager", "admin")
MANAGE_ROLES = ("team_leader", "supervisor", "manager", "admin")
AUDIT_ROLES = ("supervisor", "team_leader", "manager", "admin")
# The callback screen: any signed-in user reaches the view; callback_tasks.can_open decides per task
# (its owner, team leaders, supervisors; an unowned task: the roles of [dialler] callback_roles).
SIGNED_IN = ROLES
SCRIPT_STEPS = (
    ("打招呼", "Greeting", "客户您好,请问是您本人吗?"),
    ("确认问题", "Confirm the problem", "您反映的问题是什么,能具体描述一下吗?"),
    ("解决方案", "Solution", "关于您提出的问题,我可以为您提供什么解决方案呢?"),
    ("建议和反馈", "Feedback", "我们的服务是否令您满意?有什么需要改进的地方吗?"),
    ("结束语", "Closing", "感谢客户对我们的支持,如果有任何其他问题,欢迎随时联系我们。"),
)
MEMBER_PAGE = 200
NO_CHANNEL = _l(
    "No outbound line is configured (Twilio or Asterisk): the system dials nothing. "
    "Call the customer from another phone and record why."
)
NOT_ANSWERED = _l(
    "No answered call is on record for this task: dial first, or tick "
    "“I called from another phone” and say why."
)


CLOCK_KEY = "campaigns.clock"


def init(app: Flask, clock: Callable[[], datetime]) -> None:
    """Register the blueprint with the app's clock (times are parameters, read only at the edge)."""
    app.extensions[CLOCK_KEY] = clock
    app.register_blueprint(bp)


def _now() -> datetime:
    clock: Callable[[], datetime] = current_app.extensions.get(CLOCK_KEY, utc_now)
    return clock()


def _local(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(web_context().settings.zone).strftime("%Y-%m-%d %H:%M")


def _user(session: Session) -> User | None:
    user: User | None = session.get(User, int(current_user.get_id()))
    return user


def _owner_roles() -> tuple[str, ...]:
    return web_context().settings.dialler.callback_roles


def _open_task(session: Session, task_id: int) -> tuple[User, CallbackTask]:
    """The task, if the signed-in user may open it: 403 for someone who works no callbacks or does
    not own it, 404 for no such task."""
    user = _user(session)
    roles = _owner_roles()
    if user is None or not callback_tasks.may_work_callbacks(user, roles):
        abort(403)
    task = session.get(CallbackTask, task_id)
    if task is None:
        abort(404)
    if not callback_tasks.can_open(session, user, task_id, roles):
        abort(403)
    return user, task


@dataclass(frozen=True)
class CampaignRow:
    id: int
    name: str
    kind: str
    mode: str
    status: str
    total: int
    finished: int
    percent: int


def _row(session: Any, campaign: Campaign) -> CampaignRow:
    progress = campaigns.progress(session, campaign.id)
    return CampaignRow(
        campaign.id,
        campaign.name,
        campaign.kind,
        campaign.mode,
        campaign.status,
        progress.total,
        progress.finished,
        progress.percent,
    )


@bp.get("/campaigns")
@roles_required(*VIEW_ROLES)
def index() -> ResponseReturnValue:
    with reading() as session:
        found = session.execute(select(Campaign).order_by(Campaign.id.desc()).limit(200)).scalars()
        rows = [_row(session, campaign) for campaign in found]
    return render_template("campaigns/index.html", rows=rows, can_manage=current_user.has_role(*MANAGE_ROLES))


@bp.get("/campaigns/<int:campaign_id>/progress.json")
@roles_required(*VIEW_ROLES)
def progress_json(campaign_id: int) -> ResponseReturnValue:
    with reading() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            abort(404)
        progress = campaigns.progress(session, campaign_id)
    return jsonify(
        total=progress.total,
        finished=progress.finished,
        percent=progress.percent,
        by_status=progress.by_status,
        status=campaign.status,
    )


@bp.get("/campaigns/new")
@roles_required(*MANAGE_ROLES)
def new() -> ResponseReturnValue:
    with reading() as session:
        agents = callback_tasks.entitled_agents(session, _owner_roles())
        choices = [(agent.id, agent.name, agent.skill_level) for agent in agents]
    return render_template(
        "campaigns/new.html",
        agents=choices,
        kinds=CALLBACK_KINDS,
        modes=CAMPAIGN_MODES,
        tiers=TIERS,
        case_types=CASE_TYPES,
        errors=[],
        zone=web_context().settings.organisation.timezone,
    )


def _time(value: str) -> time | None:
    return time.fromisoformat(value) if value else None


def _spec(form: Any, now: datetime, user_id: int) -> campaigns.CampaignSpec:
    settings = web_context().settings
    start, end = _time(form.get("window_start", "")), _time(form.get("window_end", ""))
    return campaigns.CampaignSpec(
        name=form.get("name", ""),
        kind=form.get("kind", ""),
        mode=form.get("mode", ""),
        timezone=form.get("timezone") or settings.organisation.timezone,
        due_from=now,
        calls_per_minute=float(form.get("calls_per_minute") or 10),
        max_concurrent=int(form.get("max_concurrent") or 5),
        max_attempts=int(form.get("max_attempts") or settings.dialler.max_attempts),
        marketing=form.get("marketing") == "1",
        weighted=form.get("weighted") == "1",
        window=(start, end) if start and end else None,
        agent_ids=tuple(int(value) for value in form.getlist("agents")),
        created_by_id=user_id,
        owner_roles=settings.dialler.callback_roles,
    )


def _filter(form: Any) -> campaigns.CallerFilter:
    since = form.get("not_contacted_since", "")
    zone = web_context().settings.zone
    return campaigns.CallerFilter(
        tiers=tuple(value for value in form.getlist("tiers") if value in TIERS),
        not_contacted_since=datetime.combine(datetime.fromisoformat(since).date(), time(0), zone)
        if since
        else None,
        case_type=form.get("case_type") or None,
        region=form.get("region", "").strip(),
    )


@bp.post("/campaigns/new")
@roles_required(*MANAGE_ROLES)
def create() -> ResponseReturnValue:
    settings, now = web_context().settings, _now()
    upload_file = request.files.get("upload")
    upload = None
    try:
        spec = _spec(request.form, now, int(current_user.get_id()))
        chosen = _filter(request.form)
    except ValueError as exc:
        flash(_("Invalid campaign: %(error)s", error=str(exc)), "error")
        return redirect(url_for("campaigns.new"))
    if upload_file is not None and upload_file.filename:
        text = upload_file.read(5_000_000).decode("utf-8-sig", errors="replace")
        upload = campaigns.parse_upload(text, settings.organisation.phone_region)
    try:
        with web_context().db.transaction() as session:
            callers = [] if upload is not None else campaigns.select_callers(session, chosen)
            source: dict[str, Any] = (
                {"upload": upload_file.filename if upload_file else "", "rows": len(upload.numbers)}
                if upload is not None
                else {"filter": chosen.as_json()}
            )
            campaign = campaigns.create_campaign(
                session, spec, now, callers=callers, upload=upload, source=source
            )
            campaign_id = campaign.id
    except campaigns.CampaignError as exc:
        flash(_("Invalid campaign: %(error)s", error=str(exc)), "error")
        return redirect(url_for("campaigns.new"))
    if upload is not None and upload.errors:
        return render_template("campaigns/upload_errors.html", errors=upload.errors, campaign_id=campaign_id)
    flash(_("Campaign created."), "info")
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@dataclass(frozen=True)
class MemberRow:
    task_id: int
    name: str
    number: str
    agent: str
    status: str
    attempts: int
    due: str
    last_result: str


@bp.get("/campaigns/<int:campaign_id>")
@roles_required(*VIEW_ROLES)
def detail(campaign_id: int) -> ResponseReturnValue:
    region = web_context().settings.organisation.phone_region
    mine_only = not current_user.has_role(*MANAGE_ROLES)
    with reading() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            abort(404)
        row = _row(session, campaign)
        query = (
            select(CallbackTask, CampaignMember, Agent.name, Caller.name)
            .join(CampaignMember, CampaignMember.task_id == CallbackTask.id)
            .outerjoin(Agent, Agent.id == CampaignMember.agent_id)
            .outerjoin(Caller, Caller.id == CallbackTask.caller_id)
            .where(CampaignMember.campaign_id == campaign_id)
            .order_by(CallbackTask.id)
            .limit(MEMBER_PAGE)
        )
        if mine_only:
            query = query.where(Agent.user_id == int(current_user.get_id()))
        members = [
            MemberRow(
                task.id,
                caller_name or task.note,
                mask(task.number_e164 or task.number_raw, region),
                agent_name or "",
                task.status,
                task.attempts,
                _local(task.due_at),
                str(task.data.get("last_result") or ""),
            )
            for task, _member, agent_name, caller_name in session.execute(query).tuples()
        ]
        window = (
            f"{campaign.window_start:%H:%M}–{campaign.window_end:%H:%M}"
            if campaign.window_start and campaign.window_end
            else ""
        )
    return render_template(
        "campaigns/detail.html",
        campaign=row,
        window=window,
        members=members,
        can_manage=current_user.has_role(*MANAGE_ROLES),
    )


@bp.post("/campaigns/<int:campaign_id>/status")
@roles_required(*MANAGE_ROLES)
def change_status(campaign_id: int) -> ResponseReturnValue:
    try:
        with web_context().db.transaction() as session:
            campaigns.set_status(session, campaign_id, request.form.get("status", ""), _now())
    except campaigns.CampaignError as exc:
        flash(str(exc), "error")
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.get("/campaigns/<int:campaign_id>/report")
@roles_required(*VIEW_ROLES)
def report(campaign_id: int) -> ResponseReturnValue:
    settings = web_context().settings
    region = settings.organisation.phone_region
    with reading() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            abort(404)
        row = _row(session, campaign)
        summary = callback_results.summary(
            session, campaign_id, long_call_s=settings.dialler.long_call_minutes * 60
        )
    dissatisfied = [
        (task_id, mask(number, region), suggestion) for task_id, number, suggestion in summary.dissatisfied
    ]
    return render_template(
        "campaigns/report.html",
        campaign=row,
        summary=summary,
        dissatisfied=dissatisfied,
        long_call_minutes=settings.dialler.long_call_minutes,
    )


@dataclass(frozen=True)
class TaskView:
    id: int
    kind: str
    status: str
    name: str
    number: str
    attempts: int
    note: str
    campaign_id: int | None
    mode: str
    released: bool
    case_id: int | None
    repair: bool
    answered: bool
    history: list[tuple[str, str, str]]
    answered_call: bool  # a dial attempt was answered: the script may be recorded without more
    owner: str
    channel: str | None  # the outbound channel; None: nothing is ever dialled


@bp.get("/callbacks/<int:task_id>")
@roles_required(*SIGNED_IN)
def callback_screen(task_id: int) -> ResponseReturnValue:
    with reading() as session:
        user, task = _open_task(session, task_id)
        member = session.get(CampaignMember, task_id)
        campaign = session.get(Campaign, member.campaign_id) if member is not None else None
        caller = session.get(Caller, task.caller_id) if task.caller_id is not None else None
        attempts = session.execute(
            select(CallbackAttempt).where(CallbackAttempt.task_id == task_id).order_by(CallbackAttempt.number)
        ).scalars()
        history = [
            (_local(attempt.started_at), attempt.channel, attempt.result or attempt.state)
            for attempt in attempts
        ]
        answered = session.execute(select(CallbackResult.id).where(CallbackResult.task_id == task_id)).first()
        case_id = task.data.get("case_id")
        view = TaskView(
            task.id,
            task.kind,
            task.status,
            caller.name if caller is not None else task.note,
            task.number_e164 or task.number_raw,  # the handling context: the full number (G65)
            task.attempts,
            task.note,
            campaign.id if campaign is not None else None,
            campaign.mode if campaign is not None else "callback",
            member is not None and member.released_at is not None,
            int(case_id) if case_id is not None else None,
            task.kind == "repair_order",
            answered is not None,
            history,
            callback_results.answered(session, task_id),
            owner.name if (owner := callback_tasks.owner(session, task_id)) is not None else "",
            configured_channel(web_context().settings),
        )
        can_reassign = member is not None and user.has_role(*callback_tasks.LEADER_ROLES)
        choices = (
            [(agent.id, agent.name) for agent in callback_tasks.entitled_agents(session, _owner_roles())]
            if can_reassign
            else []
        )
    return render_template(
        "campaigns/callback.html",
        task=view,
        steps=SCRIPT_STEPS,
        no_channel=str(NO_CHANNEL),
        can_reassign=can_reassign,
        agents=choices,
    )


def _score(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


@bp.post("/callbacks/<int:task_id>")
@roles_required(*SIGNED_IN)
def record_callback(task_id: int) -> ResponseReturnValue:
    form = request.form
    answers = callback_results.Answers(
        identity_confirmed=form.get("identity") == "yes",
        problem=form.get("problem", ""),
        solution=form.get("solution", ""),
        satisfied=_yes_no(form.get("satisfied")),
        satisfaction=_score(form.get("satisfaction")),
        suggestion=form.get("suggestion", ""),
        attitude=_score(form.get("attitude")),
        quality=_score(form.get("quality")),
        charges_reasonable=_yes_no(form.get("charges")),
        duration_s=_score(form.get("duration_s")),
    )
    other_phone = form.get("other_phone_reason", "") if form.get("other_phone") == "1" else ""
    try:
        with web_context().db.transaction() as session:
            user, _task = _open_task(session, task_id)
            callback_results.record_answers(
                session,
                task_id,
                answers,
                user=user,
                now=_now(),
                case_policy=cases.CasePolicy.from_settings(web_context().settings),
                other_phone_reason=other_phone,
                remote_addr=request.remote_addr or "",
            )
    except callback_results.ScriptError as exc:
        flash(str(NOT_ANSWERED) if str(exc) == callback_results.NOT_ANSWERED else str(exc), "error")
        return redirect(url_for("campaigns.callback_screen", task_id=task_id))
    flash(_("Callback recorded."), "info")
    return redirect(url_for("campaigns.callback_screen", task_id=task_id))


@bp.post("/callbacks/<int:task_id>/dial")
@roles_required(*SIGNED_IN)
def dial(task_id: int) -> ResponseReturnValue:
    """Preview mode: the agent clicks to dial; the scheduler places the call under its rules."""
    with reading() as session:
        _open_task(session, task_id)
    if configured_channel(web_context().settings) is None:
        flash(str(NO_CHANNEL), "error")
        return redirect(url_for("campaigns.callback_screen", task_id=task_id))
    try:
        with web_context().db.transaction() as session:
            _open_task(session, task_id)
            agent_id = session.execute(
                select(Agent.id).where(Agent.user_id == int(current_user.get_id()))
            ).scalar_one_or_none()
            campaigns.release(session, task_id, agent_id, _now())
    except campaigns.CampaignError as exc:
        flash(str(exc), "error")
    else:
        flash(_("The call is queued for dialling."), "info")
    return redirect(url_for("campaigns.callback_screen", task_id=task_id))


@bp.post("/callbacks/<int:task_id>/reassign")
@roles_required(*callback_tasks.LEADER_ROLES)
def reassign(task_id: int) -> ResponseReturnValue:
    """F62: a team leader or supervisor gives a campaign task to another specialist (audited)."""
    agent = request.form.get("agent", "")
    try:
        with web_context().db.transaction() as session:
            user, _task = _open_task(session, task_id)
            callback_tasks.reassign(
                session,
                task_id,
                int(agent) if agent.isdigit() else 0,
                actor=user,
                reason=request.form.get("reason", ""),
                now=_now(),
                owner_roles=_owner_roles(),
                remote_addr=request.remote_addr or "",
            )
    except callback_tasks.TaskAccessError as exc:
        flash(str(exc), "error")
    else:
        flash(_("The task is reassigned."), "info")
    return redirect(url_for("campaigns.callback_screen", task_id=task_id))


@dataclass(frozen=True)
class AuditRow:
    at: str
    action: str
    task_id: str
    reason: str
    detail: str


@bp.get("/campaigns/audit")
@roles_required(*AUDIT_ROLES)
def audit() -> ResponseReturnValue:
    with reading() as session:
        rows = session.execute(
            select(AuditLog)
            .where(or_(AuditLog.action.startswith("dialler."), AuditLog.action.startswith("callback.")))
            .order_by(AuditLog.id.desc())
            .limit(300)
        ).scalars()
        entries = [
            AuditRow(
                _local(row.at),
                row.action,
                row.object_id,
                row.reason,
                "; ".join(f"{key}={value}" for key, value in sorted(row.data.items())),
            )
            for row in rows
        ]
    return render_template("campaigns/audit.html", entries=entries)


@bp.get("/campaigns/dnc")
@roles_required(*MANAGE_ROLES)
def dnc() -> ResponseReturnValue:
    region = web_context().settings.organisation.phone_region
    with reading() as session:
        rows = session.execute(select(DoNotCall).order_by(DoNotCall.id.desc()).limit(500)).scalars()
        entries = [(mask(row.e164, region), row.reason, _local(row.added_at)) for row in rows]
    return render_template("campaigns/dnc.html", entries=entries)


@bp.post("/campaigns/dnc")
@roles_required(*MANAGE_ROLES)
def add_dnc() -> ResponseReturnValue:
    settings = web_context().settings
    try:
        with web_context().db.transaction() as session:
            campaigns.add_to_dnc(
                session,
                request.form.get("number", ""),
                settings.organisation.phone_region,
                request.form.get("reason", ""),
                int(current_user.get_id()),
                _now(),
            )
    except campaigns.CampaignError as exc:
        flash(str(exc), "error")
    else:
        flash(_("Added to the do-not-call list."), "info")
    return redirect(url_for("campaigns.dnc"))
