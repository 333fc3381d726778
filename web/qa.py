"""QA pages: the evaluator's queue, the scoring workspace with the audio player, the agent's answers,
calibration, scorecard versions, the monthly report and the playback audit.

Recordings stream with HTTP Range requests (werkzeug's ``send_file(conditional=True)``: 206 with
``Content-Range``, 416 for a range past the end), so the player can seek. Every listening (the first
audio request of a player's playback token, see ``audio``) and every download is written to the audit
log.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

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
from flask_wtf import FlaskForm
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy.orm import Session

from callcenter.exceptions import NotFound
from callcenter.models import QASample, QAScorecard, Recording
from callcenter.services import cases, qa_reports, qa_reviews, qa_scorecards
from callcenter.services.qa_reviews import LISTENING_SKEW, Listening, ReviewError, Viewer
from callcenter.services.qa_scorecards import ScorecardError
from web import qa_views
from web.auth import roles_required
from web.context import reading, web_context
from web.i18n import current_locale
from web.limits import parse_id
from web.presenters import FULL_NUMBER_ROLES, Display

bp = Blueprint("qa", __name__, url_prefix="/qa")
CLOCK_KEY = "qa_clock"
QA_ROLES = ("qa", "supervisor", "team_leader", "manager", "admin")
LEADERS = ("supervisor", "team_leader", "manager", "admin")
EDITORS = ("supervisor", "admin")
AGENT_ROLES = ("agent_consultation", "agent_complaint", "callback_specialist")
AUDIT_ROLES = ("supervisor", "manager", "admin")
PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 100
# Who may hear recordings (REQUIREMENTS B16): QA, team leaders, supervisors, managers and the handling
# agent; which recording each may hear is qa_reviews.can_play. Not admin (docs/qa.md).
PLAY_ROLES = (
    "qa",
    "team_leader",
    "supervisor",
    "manager",
    "agent_consultation",
    "agent_complaint",
    "callback_specialist",
)
LISTENING_SALT = "callcenter.recording-listening"
# The formula of callcenter.services.qa_scorecards (FORMULA), as the form shows it.
FORMULA = _l(
    "section % = points given ÷ points possible (N/A items left out); total = Σ (weight × section %) ÷"
    " Σ weight of the sections with an applicable item; a failed critical item makes the total 0"
)


# The services' refusals (English, for logs and tests) in the page's language.
REVIEW_ERRORS = {
    "a dispute is open; wait for the re-score": _l("a dispute is open; wait for the re-score"),
    "acknowledged already": _l("acknowledged already"),
    "calibration scores are not answered": _l("calibration scores are not answered"),
    "choose evaluators from the QA staff": _l("choose evaluators from the QA staff"),
    "no disputes left for this evaluation": _l("no disputes left for this evaluation"),
    "no such sample": _l("no such sample"),
    "say why you dispute the score": _l("say why you dispute the score"),
    "the dispute window has closed": _l("the dispute window has closed"),
    "this assignment is scored already; a change is a re-score": _l(
        "this assignment is scored already; a change is a re-score"
    ),
    "this evaluation has been re-scored; answer the new one": _l(
        "this evaluation has been re-scored; answer the new one"
    ),
    "this evaluation is not about your calls": _l("this evaluation is not about your calls"),
    "this sample has a score already": _l("this sample has a score already"),
    "this sample is not assigned to you": _l("this sample is not assigned to you"),
    "unknown scorecard": _l("unknown scorecard"),
    qa_reviews.NO_RESCORER: _l(
        "no evaluator may re-score this call and no QA lead is configured; ask your team leader"
    ),
}


class NoticeForm(FlaskForm):  # type: ignore[misc]
    """Marking a notice read: the CSRF token only."""


def review_error(exc: Exception) -> str:
    text = str(exc)
    known = REVIEW_ERRORS.get(text)
    return str(known) if known is not None else text


def install(app: Flask, clock: Callable[[], datetime]) -> None:
    app.extensions[CLOCK_KEY] = clock
    app.register_blueprint(bp)


def _now() -> datetime:
    clock: Callable[[], datetime] = current_app.extensions[CLOCK_KEY]
    return clock()


def _viewer() -> Viewer:
    return Viewer(current_user.id, current_user.username, frozenset(current_user.roles))


def _display() -> Display:
    settings = web_context().settings
    return Display(
        zone=settings.zone,
        region=settings.organisation.phone_region,
        locale=current_locale(),
        reveal_numbers=current_user.has_role(*FULL_NUMBER_ROLES),
    )


# --- queue and workspace --------------------------------------------------------------------------


@bp.get("/")
@roles_required(*QA_ROLES)
def index() -> ResponseReturnValue:
    display = _display()
    with reading() as session:
        queue = qa_views.my_queue(session, current_user.id, display, size=PAGE_SIZE)
        notices = qa_views.my_notices(session, current_user.id, display)
        samples = (
            qa_views.recent_samples(session, display, size=PAGE_SIZE)
            if current_user.has_role(*LEADERS)
            else None
        )
    return render_template(
        "qa/index.html", queue=queue, samples=samples, notices=notices, notice_form=NoticeForm()
    )


@bp.post("/notices/<int:notice_id>/read")
@roles_required(*QA_ROLES)
def notice_read(notice_id: int) -> ResponseReturnValue:
    if not NoticeForm().validate():
        abort(400)
    try:
        with web_context().db.transaction() as session:
            cases.mark_notice_read(session, notice_id, user_id=current_user.id, now=_now())
    except NotFound:
        abort(404)
    return redirect(url_for("qa.index"))


def _sample_for_viewer(session: Session, sample_id: int) -> QASample:
    sample = session.get(QASample, sample_id)
    if sample is None:
        abort(404)
    if not current_user.has_role(*LEADERS) and not any(
        a.user_id == current_user.id for a in sample.assignments
    ):
        abort(403)
    return sample


@bp.get("/samples/<int:sample_id>")
@roles_required(*QA_ROLES)
def sample(sample_id: int) -> ResponseReturnValue:
    display = _display()
    with reading() as session:
        found = _sample_for_viewer(session, sample_id)
        space = qa_views.workspace(session, found, current_user.id, display)
        may_play = qa_reviews.can_play(session, _viewer(), found.recording)
        evaluators = qa_views.calibration_candidates(session) if current_user.has_role(*EDITORS) else []
    return render_template(
        "qa/sample.html",
        ws=space,
        formula=FORMULA,
        evaluators=evaluators,
        numbers_revealed=display.reveal_numbers,
        may_play=may_play,
    )


def _answers(form: dict[str, str], template: qa_scorecards.Template) -> dict[str, object]:
    return {item.key: form.get(f"item-{item.key}", "") for _, item in template.items()}


@bp.post("/assignments/<int:assignment_id>/evaluate")
@roles_required(*qa_reviews.LEAD_ROLES)  # only the assignee scores (qa_reviews.open_assignment)
def evaluate(assignment_id: int) -> ResponseReturnValue:
    db = web_context().db
    form = request.form.to_dict()
    try:
        with db.transaction() as session:
            scorecard_id = parse_id(form.get("scorecard_id")) or 0
            card = session.get(QAScorecard, scorecard_id)
            if card is None:
                raise ReviewError("unknown scorecard")
            template = qa_scorecards.parse_template(card.definition)
            evaluation = qa_reviews.submit(
                session,
                assignment_id,
                _viewer(),
                scorecard_id=scorecard_id,
                answers=_answers(form, template),
                comments=form.get("comments", "")[:4000],
                suggestions=form.get("suggestions", "")[:4000],
                case_material=form.get("case_material") == "on",
                now=_now(),
            )
            sample_id, total = evaluation.sample_id, evaluation.total
    except (ReviewError, ScorecardError, ValueError) as exc:
        flash(_("Not saved: %(reason)s", reason=review_error(exc)), "error")
        return redirect(request.referrer or url_for("qa.index"))
    flash(_("Evaluation saved: %(total).2f points.", total=total), "info")
    return redirect(url_for("qa.sample", sample_id=sample_id))


@bp.post("/samples/<int:sample_id>/calibrate")
@roles_required(*EDITORS)
def calibrate(sample_id: int) -> ResponseReturnValue:
    settings = web_context().settings
    user_ids = [i for i in map(parse_id, request.form.getlist("evaluator")) if i is not None]
    try:
        with web_context().db.transaction() as session:
            qa_reviews.calibrate(session, sample_id, user_ids, now=_now(), zone=settings.zone)
    except ReviewError as exc:
        flash(_("Not saved: %(reason)s", reason=review_error(exc)), "error")
    else:
        flash(_("Calibration assigned to %(count)d evaluators.", count=len(user_ids)), "info")
    return redirect(url_for("qa.sample", sample_id=sample_id))


# --- recordings -----------------------------------------------------------------------------------


def recording_file(recording: Recording) -> Path:
    """Asterisk recordings live in the monitor folder, downloaded ones (Twilio) in the store."""
    settings = web_context().settings
    folder = (
        settings.storage.monitor_dir if recording.source == "asterisk" else settings.storage.recordings_dir
    )
    root = settings.path(folder).resolve()
    path = (root / recording.uri).resolve()
    if not recording.uri or not path.is_relative_to(root) or not path.is_file():
        abort(404)
    return path


def _listenings() -> URLSafeSerializer:
    key = current_app.secret_key
    assert key is not None  # configure_session refuses to start without one
    return URLSafeSerializer(key, salt=LISTENING_SALT)


@bp.app_template_global()
def listening_url(recording_id: int) -> str:
    """A player's source: the audio URL with a playback token of the signed-in user for this
    recording. Issuing one writes nothing; the first audio request carrying it is the listening."""
    token = _listenings().dumps(
        {
            "u": current_user.id,
            "r": recording_id,
            "k": secrets.token_urlsafe(12),
            "t": int(_now().timestamp()),
        }
    )
    return url_for("qa.audio", recording_id=recording_id, listening=token)


def _listening(recording_id: int) -> Listening | None:
    """The request's playback token, if it is this user's for this recording and not expired."""
    try:
        data = _listenings().loads(request.args.get("listening", ""))
    except BadData:
        return None
    if not isinstance(data, dict) or data.get("u") != current_user.id or data.get("r") != recording_id:
        return None
    key, issued = data.get("k"), data.get("t")
    if not isinstance(key, str) or not isinstance(issued, int):
        return None
    at = datetime.fromtimestamp(issued, UTC)
    now = _now()
    lifetime = timedelta(minutes=web_context().settings.web.session_minutes)
    if not now - lifetime <= at <= now + LISTENING_SKEW:
        return None
    return Listening(key, at)


def _playable(session: Session, viewer: Viewer, recording_id: int) -> tuple[Recording, Path]:
    """The recording and its file if this viewer may hear it (403 and 404 otherwise)."""
    recording = session.get(Recording, recording_id)
    if recording is None or recording.status != "verified":
        abort(404)
    if not qa_reviews.can_play(session, viewer, recording):
        abort(403)
    return recording, recording_file(recording)


@bp.get("/recordings/<int:recording_id>/audio")
@roles_required(*PLAY_ROLES)  # which recording each may hear: qa_reviews.can_play
def audio(recording_id: int) -> ResponseReturnValue:
    """The player's stream (Range requests). Only with a playback token (``listening_url``): its
    first request writes the ``recording.play`` row, before any byte is sent; the player's later
    requests with the same token are the same listening, whatever range they ask for."""
    viewer = _viewer()
    with web_context().db.transaction() as session:
        recording, path = _playable(session, viewer, recording_id)
        listening = _listening(recording_id)
        if listening is None:
            abort(403)
        qa_reviews.audit_listening(
            session, viewer, recording, listening, now=_now(), remote_addr=request.remote_addr or ""
        )
    return send_file(path, mimetype="audio/wav", conditional=True, max_age=0)


@bp.get("/recordings/<int:recording_id>/download")
@roles_required(*PLAY_ROLES)
def download(recording_id: int) -> ResponseReturnValue:
    """Every download is audited."""
    viewer = _viewer()
    with web_context().db.transaction() as session:
        _recording, path = _playable(session, viewer, recording_id)
        remote = request.remote_addr or ""
        action = "recording.download"
        qa_reviews.audit(session, viewer, action, "recording", recording_id, now=_now(), remote_addr=remote)
    return send_file(
        path, mimetype="audio/wav", as_attachment=True, download_name=f"recording-{recording_id}.wav"
    )


# --- the agent's side -----------------------------------------------------------------------------


@bp.get("/mine")
@roles_required(*AGENT_ROLES)
def mine() -> ResponseReturnValue:
    settings = web_context().settings
    display = _display()
    with reading() as session:
        agent_id = qa_reviews.agent_of(session, current_user.id)
        rows = (
            qa_views.my_evaluations(
                session,
                agent_id,
                display,
                now=_now(),
                window=timedelta(days=settings.qa.dispute_window_days),
                max_disputes=settings.qa.max_disputes,
            )
            if agent_id is not None
            else []
        )
    return render_template("qa/mine.html", rows=rows, window_days=settings.qa.dispute_window_days)


@bp.post("/evaluations/<int:evaluation_id>/acknowledge")
@roles_required(*AGENT_ROLES)
def acknowledge(evaluation_id: int) -> ResponseReturnValue:
    try:
        with web_context().db.transaction() as session:
            qa_reviews.acknowledge(session, evaluation_id, _viewer(), now=_now())
    except ReviewError as exc:
        flash(_("Not saved: %(reason)s", reason=review_error(exc)), "error")
    else:
        flash(_("Acknowledged."), "info")
    return redirect(url_for("qa.mine"))


@bp.post("/evaluations/<int:evaluation_id>/dispute")
@roles_required(*AGENT_ROLES)
def dispute(evaluation_id: int) -> ResponseReturnValue:
    settings = web_context().settings
    try:
        with web_context().db.transaction() as session:
            sent = qa_reviews.dispute(
                session,
                evaluation_id,
                _viewer(),
                reason=request.form.get("reason", "")[:4000],
                now=_now(),
                zone=settings.zone,
                window=timedelta(days=settings.qa.dispute_window_days),
                max_disputes=settings.qa.max_disputes,
                lead=settings.qa.lead_username,
            )
            who = qa_reviews.user_names(session, {sent.rescorer_id}).get(sent.rescorer_id, "")
    except ReviewError as exc:
        flash(_("Not sent: %(reason)s", reason=review_error(exc)), "error")
    else:
        if sent.to_lead:
            message = _(
                "Dispute sent. No other evaluator may re-score this call, so it went to the QA lead,"
                " %(name)s, who will re-score it.",
                name=who,
            )
        else:
            message = _("Dispute sent; %(name)s, another evaluator, will re-score the call.", name=who)
        flash(message, "info")
    return redirect(url_for("qa.mine"))


# --- scorecards, report, audit --------------------------------------------------------------------


@bp.get("/scorecards")
@roles_required(*QA_ROLES)
def scorecards() -> ResponseReturnValue:
    with reading() as session:
        cards = [
            (card, qa_scorecards.parse_template(card.definition))
            for card in qa_views.scorecard_versions(session)
        ]
    return render_template("qa/scorecards.html", cards=cards, formula=FORMULA)


@bp.route("/scorecards/<name>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
def edit_scorecard(name: str) -> ResponseReturnValue:
    with reading() as session:
        card = qa_scorecards.current(session, name)
        if card is None:
            abort(404)
        text, title = json.dumps(card.definition, ensure_ascii=False, indent=2), card.title
    if request.method == "POST":
        text, title = request.form.get("definition", ""), request.form.get("title", title)[:128]
        try:
            definition = json.loads(text)
            if not isinstance(definition, dict):
                raise ScorecardError("the definition must be a JSON object")
            with web_context().db.transaction() as session:
                saved = qa_scorecards.save_version(
                    session, name, definition, title=title, now=_now(), user_id=current_user.id
                )
                version = saved.version
        except (json.JSONDecodeError, ScorecardError) as exc:
            flash(_("Not saved: %(reason)s", reason=review_error(exc)), "error")
        else:
            flash(_("Saved as version %(version)d.", version=version), "info")
            return redirect(url_for("qa.scorecards"))
    return render_template("qa/scorecard_edit.html", name=name, text=text, title=title)


def _month(value: str | None, today: date) -> date:
    year, _, month = (value or "").partition("-")
    if year.isdigit() and month.isdigit() and 2000 <= int(year) <= 9999 and 1 <= int(month) <= 12:
        return date(int(year), int(month), 1)
    return today.replace(day=1)


@bp.get("/reports")
@roles_required(*QA_ROLES)
def report() -> ResponseReturnValue:
    settings = web_context().settings
    first = _month(request.args.get("month"), _now().astimezone(settings.zone).date())
    with reading() as session:
        result = qa_reports.monthly_report(session, first, settings.zone, settings.qa.confidence)
        card = qa_scorecards.current(session)
        titles = (
            {i.key: i.title for _, i in qa_scorecards.parse_template(card.definition).items()} if card else {}
        )
    return render_template(
        "qa/report.html",
        report=result,
        titles=titles,
        previous=result.previous.strftime("%Y-%m"),
        following=qa_reports.next_month(result.month).strftime("%Y-%m"),
    )


@bp.get("/audit")
@roles_required(*AUDIT_ROLES)
def audit() -> ResponseReturnValue:
    with reading() as session:
        page = qa_views.audit_rows(session, _display(), size=AUDIT_PAGE_SIZE)
    return render_template("qa/audit.html", rows=page.items, page=page)
