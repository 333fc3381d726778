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
from sqlalchemy import Select, case, or_, select
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
from callcenter.phone import mask
from callcenter.services import callback_results, callback_tasks, campaigns, cases
from callcenter.services.shifts import OPEN_TASK_STATUSES
from web import case_labels, labels
from web.auth import roles_required
from web.context import reading, web_context
from web.labels import label
from web.paging import mapped, paginate
from web.presenters import FULL_NUMBER_ROLES

bp = Blueprint("campaigns", __name__)

VIEW_ROLES = ("callback_specialist", "team_leader", "supervisor", "manager", "admin")
MANAGE_ROLES = ("team_leader", "supervisor", "manager", "admin")
AUDIT_ROLES = ("supervisor", "team_leader", "manager", "admin")
# The callback screen (campaigns.callback_screen, record_callback, dial) has no role list: the roles
# that take callback tasks are a setting ([dialler] callback_roles), so any signed-in user reaches the
# view and callback_tasks.can_open decides per task (its owner, team leaders, supervisors; an unowned
# task: the callback roles), answering 403 otherwise. web/auth.py lists them in SIGNED_IN_ENDPOINTS.
# The callback worklist: the default callback role and the leaders (a role added to [dialler]
# callback_roles opens the tasks from their links, not this list: the navigation needs fixed roles).
WORKLIST_ROLES = ("callback_specialist", *callback_tasks.LEADER_ROLES)
SCRIPT_STEPS = (
    ("打招呼", "Greeting", "客户您好,请问是您本人吗?"),
    ("确认问题", "Confirm the problem", "您反映的问题是什么,能具体描述一下吗?"),
    ("解决方案", "Solution", "关于您提出的问题,我可以为您提供什么解决方案呢?"),
    ("建议和反馈", "Feedback", "我们的服务是否令您满意?有什么需要改进的地方吗?"),
    ("结束语", "Closing", "感谢客户对我们的支持,如果有任何其他问题,欢迎随时联系我们。"),
)
CAMPAIGN_PAGE = 50
MEMBER_PAGE = 100
WORKLIST_PAGE = 50
AUDIT_PAGE = 100
DNC_PAGE = 100
WORKLIST_STATUSES = {"open": OPEN_TASK_STATUSES}  # anything else: "done" (finished one way or another)
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

    @property
    def kind_name(self) -> str:
        return label(labels.CALLBACK_KINDS, self.kind)

    @property
    def mode_name(self) -> str:
        return label(labels.CAMPAIGN_MODES, self.mode)

    @property
    def status_name(self) -> str:
        return label(labels.CAMPAIGN_STATUSES, self.status)


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
        page = paginate(session, select(Campaign).order_by(Campaign.id.desc()), size=CAMPAIGN_PAGE)
        rows = mapped(page, [_row(session, campaign) for campaign in page.items])
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
        choices = [(agent.id, agent.name, label(labels.SKILL_LEVELS, agent.skill_level)) for agent in agents]
    return render_template(
        "campaigns/new.html",
        agents=choices,
        kinds=[(kind, label(labels.CALLBACK_KINDS, kind)) for kind in CALLBACK_KINDS],
        modes=[(mode, label(labels.CAMPAIGN_MODES, mode)) for mode in CAMPAIGN_MODES],
        tiers=[(tier, label(labels.TIERS, tier)) for tier in TIERS],
        case_types=[(code, label(case_labels.CASE_TYPES, code)) for code in CASE_TYPES],
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


def _members_query(campaign_id: int, mine_only: bool) -> Select[tuple[CallbackTask]]:
    query = (
        select(CallbackTask)
        .join(CampaignMember, CampaignMember.task_id == CallbackTask.id)
        .where(CampaignMember.campaign_id == campaign_id)
        .order_by(CallbackTask.id)
    )
    if mine_only:
        mine = select(Agent.id).where(Agent.user_id == int(current_user.get_id()))
        query = query.where(CampaignMember.agent_id.in_(mine))
    return query


def _names(session: Session, tasks: list[CallbackTask]) -> tuple[dict[int, str], dict[int, str]]:
    """The owners' names (by task) and the customers' names (by caller) of a page of tasks."""
    task_ids = [task.id for task in tasks]
    caller_ids = {task.caller_id for task in tasks if task.caller_id is not None}
    owned = session.execute(
        select(CampaignMember.task_id, Agent.name)
        .join(Agent, Agent.id == CampaignMember.agent_id)
        .where(CampaignMember.task_id.in_(task_ids))
    ).tuples()
    named = session.execute(select(Caller.id, Caller.name).where(Caller.id.in_(caller_ids))).tuples()
    return {task_id: name for task_id, name in owned}, {caller_id: name for caller_id, name in named}


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
        page = paginate(session, _members_query(campaign_id, mine_only), size=MEMBER_PAGE)
        tasks = list(page.items)
        owners, callers = _names(session, tasks)
        members = mapped(
            page,
            [
                MemberRow(
                    task.id,
                    callers.get(task.caller_id or 0) or task.note,
                    mask(task.number_e164 or task.number_raw, region),
                    owners.get(task.id, ""),
                    label(labels.CALLBACK_STATUSES, task.status),
                    task.attempts,
                    _local(task.due_at),
                    label(labels.ATTEMPT_RESULTS, str(task.data.get("last_result") or "")),
                )
                for task in tasks
            ],
        )
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
    names = {**labels.CALLBACK_STATUSES, **labels.ATTEMPT_RESULTS, **labels.SCRIPT_OUTCOMES}
    results = [(code, label(names, code), n) for code, n in summary.results.most_common()]
    return render_template(
        "campaigns/report.html",
        campaign=row,
        summary=summary,
        results=results,
        dissatisfied=dissatisfied,
        long_call_minutes=settings.dialler.long_call_minutes,
    )


@dataclass(frozen=True)
class WorkRow:
    """One task of the callback worklist."""

    id: int
    kind: str
    customer: str
    number: str
    due: str
    overdue: bool
    status: str
    attempts: int
    last_result: str
    campaign_id: int | None
    campaign: str


def _worklist_query(user: User, status: str, kind: str) -> Select[tuple[CallbackTask]]:
    """The tasks ``user`` may open (callback_tasks.can_open: all for the leaders; else their own
    campaign tasks and those nobody owns), open ones first by due time."""
    open_statuses = WORKLIST_STATUSES["open"]
    query = select(CallbackTask).outerjoin(CampaignMember, CampaignMember.task_id == CallbackTask.id)
    if not user.has_role(*callback_tasks.LEADER_ROLES):
        mine = select(Agent.id).where(Agent.user_id == user.id)
        query = query.where(or_(CampaignMember.agent_id.is_(None), CampaignMember.agent_id.in_(mine)))
    if status == "open":
        query = query.where(CallbackTask.status.in_(open_statuses))
    elif status == "done":
        query = query.where(CallbackTask.status.not_in(open_statuses))
    if kind in CALLBACK_KINDS:
        query = query.where(CallbackTask.kind == kind)
    is_open = case((CallbackTask.status.in_(open_statuses), 0), else_=1)
    return query.order_by(is_open, CallbackTask.due_at, CallbackTask.id)


def _campaigns_of(session: Session, task_ids: list[int]) -> dict[int, tuple[int, str]]:
    rows = session.execute(
        select(CampaignMember.task_id, Campaign.id, Campaign.name)
        .join(Campaign, Campaign.id == CampaignMember.campaign_id)
        .where(CampaignMember.task_id.in_(task_ids))
    ).tuples()
    return {task_id: (campaign_id, name) for task_id, campaign_id, name in rows}


@bp.get("/callbacks")
@roles_required(*WORKLIST_ROLES)
def callbacks() -> ResponseReturnValue:
    """The callback specialist's worklist: every task the user may open, paged with the total."""
    region, now = web_context().settings.organisation.phone_region, _now()
    status = request.args.get("status", "")
    status = status if status in ("open", "done") else ""
    kind = request.args.get("kind", "")
    kind = kind if kind in CALLBACK_KINDS else ""
    reveal = current_user.has_role(*FULL_NUMBER_ROLES)
    with reading() as session:
        user = _user(session)
        if user is None or not callback_tasks.may_work_callbacks(user, _owner_roles()):
            abort(403)
        page = paginate(session, _worklist_query(user, status, kind), size=WORKLIST_PAGE)
        tasks = list(page.items)
        _owners, callers = _names(session, tasks)
        linked = _campaigns_of(session, [task.id for task in tasks])
        rows = mapped(
            page,
            [
                WorkRow(
                    task.id,
                    label(labels.CALLBACK_KINDS, task.kind),
                    callers.get(task.caller_id or 0) or "",
                    (task.number_e164 or task.number_raw)
                    if reveal
                    else mask(task.number_e164 or task.number_raw, region),
                    _local(task.due_at),
                    task.status in OPEN_TASK_STATUSES and task.due_at <= now,
                    label(labels.CALLBACK_STATUSES, task.status),
                    task.attempts,
                    label(labels.ATTEMPT_RESULTS, str(task.data.get("last_result") or "")),
                    linked[task.id][0] if task.id in linked else None,
                    linked[task.id][1] if task.id in linked else "",
                )
                for task in tasks
            ],
        )
    return render_template(
        "campaigns/callbacks.html",
        rows=rows,
        status=status,
        kind=kind,
        kinds=[(code, label(labels.CALLBACK_KINDS, code)) for code in CALLBACK_KINDS],
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

    @property
    def status_name(self) -> str:
        return label(labels.CALLBACK_STATUSES, self.status)


@bp.get("/callbacks/<int:task_id>")
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
            (
                _local(attempt.started_at),
                label(labels.OUTBOUND_CHANNELS, attempt.channel),
                label(labels.ATTEMPT_RESULTS, attempt.result or attempt.state),
            )
            for attempt in attempts
        ]
        answered = session.execute(select(CallbackResult.id).where(CallbackResult.task_id == task_id)).first()
        case_id = task.data.get("case_id")
        view = TaskView(
            task.id,
            label(labels.CALLBACK_KINDS, task.kind),
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
    query = (
        select(AuditLog)
        .where(or_(AuditLog.action.startswith("dialler."), AuditLog.action.startswith("callback.")))
        .order_by(AuditLog.id.desc())
    )
    with reading() as session:
        page = paginate(session, query, size=AUDIT_PAGE)
        entries = mapped(
            page,
            [
                AuditRow(
                    _local(row.at),
                    row.action,
                    row.object_id,
                    row.reason,
                    "; ".join(f"{key}={value}" for key, value in sorted(row.data.items())),
                )
                for row in page.items
            ],
        )
    return render_template("campaigns/audit.html", entries=entries)


@bp.get("/campaigns/dnc")
@roles_required(*MANAGE_ROLES)
def dnc() -> ResponseReturnValue:
    region = web_context().settings.organisation.phone_region
    with reading() as session:
        page = paginate(session, select(DoNotCall).order_by(DoNotCall.id.desc()), size=DNC_PAGE)
        entries = mapped(
            page, [(mask(row.e164, region), row.reason, _local(row.added_at)) for row in page.items]
        )
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
