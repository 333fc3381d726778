"""Journeys across desks in Chromium, on SQLite and PostgreSQL: each step is done by the person at that
desk (own login, own browser context, own page), and each test checks that the next desk got the
result. The voice layers are the real ones: the FastAGI server plays the caller's IVR
(``simulate_call``), and the queue's AMI events come from the fake Asterisk manager
(tests/voice/ami/fakeami.py) through the production AMI listener (``build_ami``), which writes the
contact record, publishes the screen-pops on the web's bus through the screen-pop ledger
(``TrackedBus``) and moves the agent's presence. The scheduler's jobs (abandon sweep, recording
check, QA draw, dialler) run by calling them with an injected ``now``; the dialler dials through the
fake AMI, whose ``Originate`` is answered.

(a) call → pop → wrap-up → complaint case → department → reply → callback → close → QA sample →
    score → dispute → re-score;
(b) after-hours call → callback at the next opening → reached;
(c) queue abandon → missed-call callback → reached;
(d) an agent with no console tab open enters wrap-up on the call's AMI events.

A lost pop fails the test: the card must pop within ``POP_BOUND_MS`` and every pop of the call must
be in the ledger as delivered, none as missed. The ledger's grace is ``LEDGER_GRACE_S`` here (15 s in
production) so that (d) sees its undelivered pops marked missed without waiting.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Error, Page, expect
from sqlalchemy import select
from werkzeug.serving import make_server

from callcenter.db import Database
from callcenter.dialler.channels import AmiChannel
from callcenter.dialler.engine import Dialler
from callcenter.dialler.lease import Lease
from callcenter.events import LocalBus, TrackedBus
from callcenter.ivr.hours import business_hours
from callcenter.models import (
    AgentPresence,
    Call,
    CallbackAttempt,
    CallbackResult,
    CallbackTask,
    Case,
    QAAssignment,
    QAEvaluation,
    QAResponse,
    QASample,
    ScreenPop,
    User,
)
from callcenter.settings import Settings
from callcenter.voice.agi.main import build_server
from callcenter.voice.agi.server import FastAGIServer, RunningServer
from callcenter.voice.agi.simulate import CallScript, Simulation, simulate_call
from callcenter.voice.ami.main import AmiService, build_ami
from scheduler import jobs
from scheduler.dialling import build_channel
from tests.browser.conftest import ARTIFACTS, VIEWPORT
from tests.console.factories import make_agent
from tests.qa.factories import write_wav
from tests.voice.ami.conftest import wait_for
from tests.voice.ami.fakeami import FakeAmi
from tests.web.factories import PASSWORD, make_account, update_user, web_settings_for
from web import create_app
from web.console import ConsoleRuntime

SECRET = "s3cret"
EXTENSION = "1001"
MEMBER = f"PJSIP/{EXTENSION}"
ASTERISK_MONITOR = "/var/spool/asterisk/monitor"
POP_BOUND_MS = 2000
LEDGER_GRACE_S = 2.0


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- time: fixed instants in the recent past -------------------------------------------------------


def local_instant(settings: Settings, days_ago: int, at: time) -> datetime:
    """``at`` (local time) on the local day ``days_ago`` before today, in UTC: recent enough for the
    web's real clock ("today", the dispute window), fixed within a run."""
    today = utc_now().astimezone(settings.zone).date()
    moment = datetime.combine(today - timedelta(days=days_ago), at, tzinfo=settings.zone)
    return moment.astimezone(UTC)


def day_call(settings: Settings) -> datetime:
    moment = local_instant(settings, 1, time(10, 0))
    assert business_hours(settings).is_open(moment), "the journeys need 10:00 yesterday in hotline hours"
    return moment


# --- the desks ----------------------------------------------------------------------------------


@dataclass
class Desks:
    """The running system (web, AMI listener on the fake Asterisk) and the people's browsers."""

    url: str
    settings: Settings
    db: Database
    fake_ami: FakeAmi
    ami: AmiService
    console: ConsoleRuntime
    browser: Browser
    errors: list[str] = field(default_factory=list)
    contexts: list[tuple[str, BrowserContext, Page]] = field(default_factory=list)

    def sign_in(self, username: str, next_page: str = "") -> Page:
        """A new browser (own cookies) for ``username``, signed in on the login page; it lands on the
        user's desk, or on ``next_page``."""
        context = self.browser.new_context(locale="zh-CN", viewport=VIEWPORT)
        page = context.new_page()

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(f"{username} console: {message.text}")

        def on_page_error(error: Error) -> None:
            self.errors.append(f"{username} page error: {error.message}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        self.contexts.append((username, context, page))
        page.goto(f"{self.url}/login" + (f"?next={next_page}" if next_page else ""))
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        expect(page).not_to_have_url(re.compile(r"/login"))
        return page

    @contextmanager
    def voice(self, clock: Callable[[], datetime]) -> Iterator[FastAGIServer]:
        """The FastAGI server with the hotline flow, its clock fixed where the journey needs it."""
        server = build_server(self.settings, self.db, clock, port=0)
        with RunningServer(server):
            yield server

    def call(self, clock: Callable[[], datetime], script: CallScript) -> Simulation:
        """A caller through the IVR; the call's report is on record when this returns."""
        with self.voice(clock) as server:
            result = simulate_call("127.0.0.1", server.port, script, timeout_s=10)
            assert server.fallback.recorder.flush()
        return result

    def play(self, events: list[dict[str, str]]) -> None:
        """Asterisk sends ``events``; returns once the listener has handled them."""
        client = self.ami.client
        expected = client.stats.events + len(events)
        self.fake_ami.send_events(events)
        wait_for(lambda: client.stats.events >= expected, message="AMI events received")
        assert client.drain()

    def runtime(self, now: datetime) -> jobs.Runtime:
        return jobs.Runtime(self.settings, self.db, lambda: now)

    def dial_due_callbacks(self, now: datetime) -> int:
        """One pass of the scheduler's dialler at ``now``, dialling through the fake Asterisk."""
        channel, closer = build_channel(self.settings, lambda: now)
        assert isinstance(channel, AmiChannel) and closer is not None
        try:
            assert channel.client.wait_connected(5)
            lease = Lease(self.db, lambda: now, ttl_s=15, holder="journey")
            assert lease.acquire() is not None
            dialler = Dialler(self.settings, self.db, lambda: now, channel, lease, synchronous=True)
            try:
                return dialler.tick().dialled
            finally:
                dialler.close()
        finally:
            closer()

    def shot(self, page: Page, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"journey_{name}_{self.db.dialect}.png", full_page=True)


@pytest.fixture
def desks(
    tmp_path: Path,
    db: Database,
    browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Desks]:
    monkeypatch.setenv("CALLCENTER_AMI__SECRET", SECRET)  # secrets come from the environment only
    fake_ami = FakeAmi(secret=SECRET).start()
    settings = web_settings_for(
        tmp_path,
        db.url,
        ami={
            "host": "127.0.0.1",
            "port": fake_ami.port,
            "reconnect_min_s": 0.01,
            "reconnect_max_s": 0.05,
            "action_timeout_s": 3.0,
        },
        storage={"asterisk_monitor_dir": ASTERISK_MONITOR},
    )
    # As `callcenter serve` wires them: one local bus; the AMI listener publishes on it through the
    # screen-pop ledger (publisher_for with bus = "local"), with a shorter grace.
    bus = LocalBus()
    app = create_app(settings, db, bus=bus)
    ami = build_ami(settings, db, utc_now, bus=TrackedBus(bus, db, utc_now, grace_s=LEDGER_GRACE_S))
    assert ami is not None
    ami.start()
    fake_ami.wait_logins(1)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="journey-web", daemon=True)
    thread.start()
    built = Desks(
        f"http://127.0.0.1:{server.server_port}",
        settings,
        db,
        fake_ami,
        ami,
        app.extensions["console"],
        browser,
    )
    try:
        yield built
    finally:
        # Where each person's page ended, pass or fail (next to the other browser tests' shots).
        ARTIFACTS.mkdir(exist_ok=True)
        node = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid).strip("_")
        for index, (username, context, page) in enumerate(built.contexts):
            if not page.is_closed():
                page.screenshot(path=ARTIFACTS / f"{node}_{index}_{username}.png", full_page=True)
            context.close()
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        built.console.stop()
        ami.stop()
        fake_ami.stop()


# --- what Asterisk's queue reports (AMI events, Asterisk 22's fields) ----------------------------


def _stamp(at: datetime) -> str:
    return f"{at.timestamp():.6f}"


def _callers_leg(linkedid: str, number: str, name: str) -> dict[str, str]:
    return {
        "Privilege": "agent,all",
        "Channel": f"PJSIP/trunk-{linkedid.replace('.', '')}",
        "CallerIDNum": number,
        "CallerIDName": name,
        "Uniqueid": linkedid,
        "Linkedid": linkedid,
    }


def _member(linkedid: str, queue: str) -> dict[str, str]:
    return {
        "DestChannel": f"{MEMBER}-{linkedid.replace('.', '')}",
        "DestUniqueid": f"{linkedid}1",
        "DestLinkedid": linkedid,
        "Queue": queue,
        "Interface": MEMBER,
        "MemberName": EXTENSION,
    }


@dataclass(frozen=True)
class QueueCall:
    """One caller's queue leg as the AMI reports it: recorded by MixMonitor, joining ``queue`` at
    ``start`` + 10 s."""

    linkedid: str
    start: datetime
    queue: str
    number: str
    name: str
    talk_s: int = 45

    @property
    def recording(self) -> str:
        return f"journey/{self.linkedid}.wav"

    def event(self, name: str, offset_s: float, **fields: str) -> dict[str, str]:
        at = self.start + timedelta(seconds=offset_s)
        return {
            "Event": name,
            **_callers_leg(self.linkedid, self.number, self.name),
            "Timestamp": _stamp(at),
            **fields,
        }

    def rings_and_connects(self) -> list[dict[str, str]]:
        member = _member(self.linkedid, self.queue)
        return [
            self.event(
                "VarSet",
                9,
                Privilege="dialplan,all",
                Variable="MIXMONITOR_FILENAME",
                Value=f"{ASTERISK_MONITOR}/{self.recording}",
            ),
            self.event("QueueCallerJoin", 10, Queue=self.queue, Position="1", Count="1"),
            self.event("AgentCalled", 11, **member),
            self.event("AgentConnect", 13, **member, HoldTime="3", RingTime="2"),
        ]

    def ends(self) -> list[dict[str, str]]:
        end = 13 + self.talk_s
        member = _member(self.linkedid, self.queue)
        return [
            self.event(
                "AgentComplete", end, **member, HoldTime="3", TalkTime=str(self.talk_s), Reason="caller"
            ),
            self.event(
                "Hangup", end + 0.1, Privilege="call,all", Cause="16", **{"Cause-txt": "Normal Clearing"}
            ),
        ]

    def abandons(self, wait_s: int = 30) -> list[dict[str, str]]:
        return [
            self.event("QueueCallerJoin", 10, Queue=self.queue, Position="1", Count="1"),
            self.event(
                "Hangup", 10 + wait_s, Privilege="call,all", Cause="16", **{"Cause-txt": "Normal Clearing"}
            ),
            self.event(
                "QueueCallerAbandon",
                10 + wait_s + 0.1,
                Queue=self.queue,
                Position="1",
                OriginalPosition="1",
                HoldTime=str(wait_s),
            ),
        ]


# --- reading what the desks left behind -----------------------------------------------------------


def the_call(db: Database, linkedid: str) -> Call:
    with db.read() as session:
        call = session.execute(select(Call).where(Call.external_id == linkedid)).scalar_one()
        session.expunge(call)
        return call


def presence_of(db: Database, agent_id: int) -> tuple[str, int | None] | None:
    with db.read() as session:
        row = session.get(AgentPresence, agent_id)
        return (row.status, row.call_id) if row is not None else None


def pops_of(db: Database, call_id: int) -> list[tuple[str, bool, bool]]:
    """(state, delivered, missed) of each pop of the call in the screen-pop ledger."""
    with db.read() as session:
        rows = session.execute(select(ScreenPop).where(ScreenPop.call_id == call_id).order_by(ScreenPop.id))
        return [
            (row.state, row.delivered_at is not None, row.missed_at is not None) for row in rows.scalars()
        ]


def task_of(db: Database, task_id: int) -> CallbackTask:
    with db.read() as session:
        task = session.get(CallbackTask, task_id)
        assert task is not None
        session.expunge_all()
        return task


def attempts_of(db: Database, task_id: int) -> list[tuple[str, str | None]]:
    with db.read() as session:
        query = (
            select(CallbackAttempt).where(CallbackAttempt.task_id == task_id).order_by(CallbackAttempt.number)
        )
        return [(attempt.channel, attempt.result) for attempt in session.execute(query).scalars()]


def case_status(db: Database, case_id: int) -> str:
    with db.read() as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.status


def originates(fake_ami: FakeAmi) -> list[dict[str, str]]:
    return [action for action in fake_ami.actions if action.get("Action") == "Originate"]


def pauses(fake_ami: FakeAmi, interface: str) -> list[tuple[str, str]]:
    return [
        (action.get("Paused", ""), action.get("Reason", ""))
        for action in fake_ami.actions
        if action.get("Action") == "QueuePause" and action.get("Interface") == interface
    ]


# --- steps shared by the journeys ------------------------------------------------------------------


def act_on_case(page: Page, action: str, **fields: str) -> None:
    """Submit the case page's form for ``action``; fields by their name without the form's prefix
    (``approve-decision``: ``decision``)."""
    form = page.locator(f"form[data-action={action}]")
    for name, value in fields.items():
        control = form.locator(f"[name$='-{name}']")
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    form.locator("button[type=submit]").click()
    expect(page.locator(".flash-error")).to_have_count(0)


def expect_case_status(page: Page, status: str) -> None:
    expect(page.locator(".pagehead .tag.status")).to_have_attribute("data-status", status)


def task_on_the_worklist(page: Page, desks: Desks, kind: str, number: str) -> int:
    """The callback specialist's desk is the worklist: the one open task of ``kind`` (display name)
    for ``number`` (masked) is on it, due; its id comes from the row."""
    page.goto(f"{desks.url}/")
    expect(page).to_have_url(f"{desks.url}/callbacks")
    row = page.locator("table.worklist tr[data-task-id]", has_text=kind)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(number)
    expect(row.locator("td.status")).to_have_text("待处理")
    task_id = row.get_attribute("data-task-id")
    assert task_id is not None
    return int(task_id)


def record_the_callback(page: Page, desks: Desks, task_id: int, *, problem: str, satisfaction: str) -> None:
    """The callback specialist opens the task from the worklist, sees the answered attempt and saves
    the script."""
    page.goto(f"{desks.url}/callbacks")
    page.locator(f"table.worklist tr[data-task-id='{task_id}'] a").first.click()
    expect(page).to_have_url(f"{desks.url}/callbacks/{task_id}")
    expect(page.locator("ul.attempts li")).to_have_count(1)
    expect(page.locator("ul.attempts li").first).to_contain_text("已接通")
    script = page.locator("form.script-form")
    script.locator("input[name=identity][value=yes]").check()
    script.locator("textarea[name=problem]").fill(problem)
    script.locator("textarea[name=solution]").fill("已按客户要求处理")
    script.locator("input[name=satisfied][value=yes]").check()
    script.locator("select[name=satisfaction]").select_option(satisfaction)
    script.locator("textarea[name=suggestion]").fill("回电及时")
    script.locator("button[type=submit]").click()
    expect(page.locator(".flash-error")).to_have_count(0)
    expect(page.locator("section.script p.done")).to_be_visible()
    with desks.db.read() as session:
        result = session.execute(select(CallbackResult).where(CallbackResult.task_id == task_id)).scalar_one()
        assert (result.outcome, result.source, result.satisfaction) == (
            "reached",
            "script",
            int(satisfaction),
        )
        task = session.get(CallbackTask, task_id)
        assert task is not None and task.status == "done"


def score_sample(page: Page, desks: Desks, username: str, sample_id: int, purpose: str, **items: str) -> None:
    """A QA evaluator finds the sample in their queue (assigned to them for ``purpose``), opens it and
    scores it (every item at full marks but ``items``)."""
    with desks.db.read() as session:
        assigned = session.execute(
            select(QAAssignment.purpose, QAAssignment.done_at).where(
                QAAssignment.sample_id == sample_id, QAAssignment.user_id == user_id(desks.db, username)
            )
        ).all()
    assert [(kind, done is None) for kind, done in assigned] == [(purpose, True)]
    page.goto(f"{desks.url}/qa/")
    row = page.locator(f"table.qa-queue tr[data-sample-id='{sample_id}']")
    expect(row).to_have_count(1)
    row.locator("a").click()
    expect(page).to_have_url(f"{desks.url}/qa/samples/{sample_id}")
    for key, value in items.items():
        page.select_option(f"#item-{key}", value)
    page.fill("#comments", "结束语不完整" if items else "复核:结束语完整")
    page.click("form.qa-form button[type=submit]")
    expect(page.locator(".flash-error")).to_have_count(0)


# --- (a) ----------------------------------------------------------------------------------------


@pytest.mark.browser
def test_a_complaint_call_crosses_every_desk_to_a_rescored_qa_sample(desks: Desks, db: Database) -> None:
    settings, start = desks.settings, day_call(desks.settings)
    now = utc_now()
    agent = make_account(db, now, "zhangwei", ("agent_complaint",))
    agent_id = make_agent(db, now, user_id=agent.id, name="张伟", extension=EXTENSION)
    handler = make_account(db, now, "handler", ("department_handler",))
    update_user(db, handler, department="after_sales", display_name="售后处理员")
    head = make_account(db, now, "head", ("department_handler",))
    update_user(db, head, department="after_sales", is_department_head=True)
    make_account(db, now, "callback", ("callback_specialist",))
    for name in ("qa1", "qa2"):
        make_account(db, now, name, ("qa",))

    # The agent's desk: the console, open and listening.
    console = desks.sign_in("zhangwei")
    console.goto(f"{desks.url}/console")
    expect(console.locator("#presence-status")).to_have_attribute("data-status", "available")
    expect(console.locator("#stream-state")).to_have_attribute("data-state", "open")
    assert desks.console.wait_ready(5)

    # The caller presses 2 (complaints); the queue rings the agent, who answers.
    result = desks.call(lambda: start, CallScript(inputs=["2"], caller_name="王芳"))
    call = QueueCall(result.linkedid, start, "complaint", "+8613800138000", "王芳")
    desks.play(call.rings_and_connects())
    card = console.locator("#card")
    expect(card).to_be_visible(timeout=POP_BOUND_MS)
    expect(console.locator("#card-state")).to_have_attribute("data-state", "connected", timeout=POP_BOUND_MS)
    expect(console.locator("#card-name")).to_have_text("王芳")
    expect(console.locator("#card-queue")).to_have_text("complaint")
    call_id = int(card.get_attribute("data-call-id") or 0)
    assert call_id == the_call(db, result.linkedid).id
    assert presence_of(db, agent_id) == ("on_call", call_id)

    # The caller hangs up: the listener puts the agent in wrap-up; the agent wraps up on the card.
    desks.play(call.ends())
    assert presence_of(db, agent_id) == ("wrap_up", call_id)
    console.select_option("#wrapup-form select[name=category]", "complaint")
    console.fill("#wrapup-form textarea[name=note]", "客户投诉上门维修人员态度差")
    console.click("#wrapup-form button[type=submit]")
    expect(console.locator("#console-status")).to_contain_text("小结已保存")
    expect(console.locator("#presence-status")).to_have_attribute("data-status", "available")
    # No pop lost: both were written to the agent's stream, neither is in the ledger as missed.
    wait_for(lambda: pops_of(db, call_id) == [("ringing", True, False), ("connected", True, False)])

    # The complaint case, from the card; the agent classifies it and assigns it to after-sales.
    with console.expect_popup() as popup:
        console.click("#card-case-link")
    form = popup.value
    expect(form.locator("#case_type")).to_have_value("complaint")  # the call came through 2
    form.select_option("#category", "service_attitude")
    form.fill("#title", "维修人员态度差")
    form.fill("#content", "客户投诉上门维修人员态度差,要求回电。")
    form.click("form.case-form button[type=submit]")
    expect(form.locator("h1.case-number")).to_have_text(re.compile(r"^TS-\d{8}-\d{4}$"))
    case_id = int(form.url.rstrip("/").rsplit("/", 1)[1])
    number = form.locator("h1.case-number").inner_text()
    act_on_case(form, "classify", category="service_attitude")
    expect_case_status(form, "classified")
    act_on_case(form, "assign", department="after_sales")
    expect_case_status(form, "assigned")

    # The department's desk: the case is on its list; the handler signs off and proposes a solution.
    department = desks.sign_in("handler")
    department.goto(f"{desks.url}/cases")
    row = department.locator(f"table.cases tr[data-case-id='{case_id}']")
    expect(row).to_contain_text(number)
    row.locator("a").first.click()
    expect(department.locator("h1.case-number")).to_have_text(number)
    act_on_case(department, "sign_off")
    expect_case_status(department, "in_progress")
    act_on_case(department, "submit_solution", solution="向客户致歉并更换维修人员", remedy="extra_service")
    expect_case_status(department, "solution_pending_approval")

    # The head of the department approves; the handler audits the reply and replies to the customer.
    approver = desks.sign_in("head")
    approver.goto(f"{desks.url}/cases/{case_id}")
    act_on_case(approver, "approve_solution", decision="approve")
    expect_case_status(approver, "solution_approved")
    department.reload()
    act_on_case(department, "audit_reply", decision="approve", note="答复内容合规")
    act_on_case(department, "send_reply", note="已致电客户致歉,改派资深维修人员上门。")
    expect_case_status(department, "customer_replied")
    # The complaint callback reached the callback specialist's worklist.
    specialist = desks.sign_in("callback")
    task = task_of(db, task_on_the_worklist(specialist, desks, "投诉回访", "138****8000"))
    assert task.kind == "complaint" and task.data.get("case_id") == case_id and task.status == "pending"

    # The scheduler's dialler, once the callback is due (in hours): the fake Asterisk answers.
    due = business_hours(settings).next_opening(task.due_at)
    assert desks.dial_due_callbacks(due) == 1
    assert [action["ActionID"] for action in originates(desks.fake_ami)] == [f"cb-{task.id}-1"]
    assert attempts_of(db, task.id) == [("asterisk", "reached")]

    # The callback specialist records the callback and closes the case.
    record_the_callback(specialist, desks, task.id, problem="维修人员态度差", satisfaction="4")
    assert case_status(db, case_id) == "callback_done"
    specialist.goto(f"{desks.url}/cases/{case_id}")
    expect_case_status(specialist, "callback_done")
    act_on_case(specialist, "close")
    expect_case_status(specialist, "closed")

    # QA: the recording is written and verified, the day's sample drawn and assigned.
    folder = settings.path(settings.storage.monitor_dir)
    write_wav(folder, call.recording, seconds=3.0)
    ended = the_call(db, result.linkedid).ended_at
    assert ended is not None
    verified = jobs.verify_recordings(desks.runtime(ended + timedelta(minutes=1)))
    assert getattr(verified, "verified", 0) == 1
    drawn = jobs.draw_qa_sample(desks.runtime(start + timedelta(days=1)))
    assert (getattr(drawn, "sampled", 0), getattr(drawn, "assigned", 0)) == (1, 1)
    with db.read() as session:
        sample = session.execute(select(QASample)).scalar_one()
        assert sample.call_id == call_id
        sample_id = sample.id
        scorer = session.execute(
            select(QAAssignment.user_id).where(QAAssignment.sample_id == sample_id)
        ).scalar_one()
    first, second = ("qa1", "qa2") if scorer == user_id(db, "qa1") else ("qa2", "qa1")

    evaluator = desks.sign_in(first)
    score_sample(evaluator, desks, first, sample_id, "review", politeness="8", mandarin="fail")
    expect(evaluator.locator("article.qa-evaluation.current .qa-total")).to_have_text("97.69")

    # The agent disputes the score on their own page.
    mine = desks.sign_in("zhangwei")  # a second browser of the agent's: the console stays open
    mine.goto(f"{desks.url}/qa/mine")
    scored = mine.locator("section.qa-mine")
    expect(scored).to_have_count(1)
    expect(scored.locator(".qa-total")).to_have_text("97.69")
    scored.locator("input[name=reason]").fill("已使用普通话,请复核")
    scored.locator("form[action*='/dispute'] button[type=submit]").click()
    expect(mine.locator(".flash-error")).to_have_count(0)
    expect(mine.locator("section.qa-mine .qa-response")).to_contain_text("已使用普通话,请复核")

    # The other evaluator gets the re-score in their queue and scores again.
    rescorer = desks.sign_in(second)
    score_sample(rescorer, desks, second, sample_id, "rescore")
    current = rescorer.locator("article.qa-evaluation.current")
    expect(current.locator(".qa-total")).to_have_text("100.00")
    with db.read() as session:
        evaluations = session.execute(select(QAEvaluation).order_by(QAEvaluation.id)).scalars().all()
        assert [(e.version, e.purpose) for e in evaluations] == [(1, "review"), (2, "rescore")]
        assert evaluations[1].supersedes_id == evaluations[0].id
        [dispute] = session.execute(select(QAResponse).where(QAResponse.kind == "dispute")).scalars().all()
        assert dispute.status == "rescored"

    # The agent sees the new score.
    mine.reload()
    expect(mine.locator("section.qa-mine .qa-total")).to_have_text("100.00")
    desks.shot(mine, "a_rescored")
    assert desks.errors == []


def user_id(db: Database, username: str) -> int:
    with db.read() as session:
        return session.execute(select(User.id).where(User.username == username)).scalar_one()


# --- (b) ----------------------------------------------------------------------------------------


@pytest.mark.browser
def test_an_after_hours_call_is_called_back_at_the_next_opening(desks: Desks, db: Database) -> None:
    settings = desks.settings
    night = local_instant(settings, 2, time(23, 0))
    hours = business_hours(settings)
    assert not hours.is_open(night)
    make_account(db, utc_now(), "callback", ("callback_specialist",))

    result = desks.call(lambda: night, CallScript(inputs=["timeout"], caller_number="+8615000150000"))
    assert "callcenter/hotline/zh/closed" in result.prompts
    specialist = desks.sign_in("callback")
    task = task_of(db, task_on_the_worklist(specialist, desks, "非服务时间来电", "150****0000"))
    opening = hours.next_opening(night)
    assert (task.status, task.number_e164, task.due_at) == ("pending", "+8615000150000", opening)
    assert task.kind == "after_hours" and task.call_id == the_call(db, result.linkedid).id

    # The dialler runs through the night: nothing is due before the opening.
    assert desks.dial_due_callbacks(night + timedelta(minutes=30)) == 0
    assert desks.dial_due_callbacks(opening - timedelta(minutes=1)) == 0
    assert originates(desks.fake_ami) == []
    # At the opening it dials the caller; the fake Asterisk answers.
    assert desks.dial_due_callbacks(opening) == 1
    [originate] = originates(desks.fake_ami)
    assert originate["ActionID"] == f"cb-{task.id}-1" and "CC_NUMBER=+8615000150000" in originate["Variable"]
    assert attempts_of(db, task.id) == [("asterisk", "reached")]

    record_the_callback(specialist, desks, task.id, problem="非服务时间来电,咨询保修", satisfaction="5")
    desks.shot(specialist, "b_after_hours")
    assert desks.errors == []


# --- (c) ----------------------------------------------------------------------------------------


@pytest.mark.browser
def test_a_queue_abandon_becomes_a_callback_that_reaches_the_caller(desks: Desks, db: Database) -> None:
    start = day_call(desks.settings)
    make_account(db, utc_now(), "callback", ("callback_specialist",))

    result = desks.call(lambda: start, CallScript(inputs=["1"], caller_number="+8613900139000"))
    call = QueueCall(result.linkedid, start, "consultation", "+8613900139000", "Test")
    desks.play(call.abandons(wait_s=30))
    recorded = the_call(db, result.linkedid)
    assert (recorded.disposition, recorded.queue_name) == ("abandoned_in_queue", "consultation")
    ended = recorded.ended_at
    assert ended is not None

    # The sweep waits the grace for the caller to call again, then owes them a callback.
    assert getattr(jobs.sweep_queue_abandons(desks.runtime(ended + timedelta(minutes=1))), "created", 0) == 0
    swept_at = ended + timedelta(minutes=5)
    assert getattr(jobs.sweep_queue_abandons(desks.runtime(swept_at)), "created", 0) == 1
    specialist = desks.sign_in("callback")
    task = task_of(db, task_on_the_worklist(specialist, desks, "未接来电", "139****9000"))
    assert (task.kind, task.call_id, task.queue_name, task.due_at) == (
        "missed_call",
        recorded.id,
        "consultation",
        swept_at,
    )

    assert desks.dial_due_callbacks(swept_at + timedelta(seconds=1)) == 1
    assert attempts_of(db, task.id) == [("asterisk", "reached")]

    record_the_callback(specialist, desks, task.id, problem="排队时挂断,咨询安装", satisfaction="5")
    desks.shot(specialist, "c_queue_abandon")
    assert desks.errors == []


# --- (d) ----------------------------------------------------------------------------------------


@pytest.mark.browser
def test_an_agent_with_no_console_open_enters_wrap_up_on_the_calls_events(desks: Desks, db: Database) -> None:
    start = day_call(desks.settings)
    account = make_account(db, utc_now(), "lina", ("agent_consultation",))
    agent_id = make_agent(db, utc_now(), user_id=account.id, name="李娜", extension=EXTENSION)

    # The agent signs in (available) but opens no console tab: the sign-in goes to the call log, not
    # to the agent's desk (the console).
    desk = desks.sign_in("lina", next_page="/calls")
    expect(desk).to_have_url(f"{desks.url}/calls")
    assert desks.console.hub.streams == 0
    assert presence_of(db, agent_id) == ("available", None)

    result = desks.call(lambda: start, CallScript(inputs=["1"], caller_name="赵六"))
    call = QueueCall(result.linkedid, start, "consultation", "+8613800138000", "赵六")
    desks.play(call.rings_and_connects())
    call_id = the_call(db, result.linkedid).id
    assert presence_of(db, agent_id) == ("on_call", call_id)
    desks.play(call.ends())
    assert presence_of(db, agent_id) == ("wrap_up", call_id)
    # The listener paused the agent's queue member on its own AMI connection for each change.
    wait_for(
        lambda: pauses(desks.fake_ami, MEMBER)[-2:] == [("true", "on_call"), ("true", "wrap_up")],
        message="QueuePause on_call then wrap_up",
    )
    # Nobody showed the pops: the ledger marks them missed (not lost silently).
    wait_for(
        lambda: pops_of(db, call_id) == [("ringing", False, True), ("connected", False, True)],
        timeout=LEDGER_GRACE_S + 5,
        message="the undelivered pops marked missed",
    )

    # The agent opens the console now: in wrap-up, and the missed pops of the call are listed.
    desk.goto(f"{desks.url}/console")
    expect(desk.locator("#presence-status")).to_have_attribute("data-status", "wrap_up")
    missed = desk.locator(f"#missed-pop-list li[data-call-id='{call_id}']")
    expect(missed).to_have_count(2)
    expect(missed.first).to_contain_text("赵六")

    # No card popped for the call: the agent wraps it up from the calls waiting for wrap-up.
    waiting = desk.locator(f"#waiting li[data-call-id='{call_id}']")
    expect(waiting).to_contain_text("赵六")
    waiting.locator("select[name=category]").select_option("consultation")
    waiting.locator("textarea[name=note]").fill("已解答安装问题")
    desks.shot(desk, "d_no_console")
    waiting.locator("button[type=submit]").click()
    expect(desk.locator(".flash-error")).to_have_count(0)
    expect(desk.locator("#presence-status")).to_have_attribute("data-status", "available")
    expect(desk.locator(f"#waiting li[data-call-id='{call_id}']")).to_have_count(0)
    assert presence_of(db, agent_id) == ("available", None)
    with db.read() as session:
        wrapped = session.get(Call, call_id)
        assert wrapped is not None and (wrapped.wrapup_category, wrapped.wrapup_note) == (
            "consultation",
            "已解答安装问题",
        )
    assert desks.errors == []
