"""Every page in Chinese shows display names, never a stored code; each demo login lands on its desk
and sees only navigation links that open for it.

The app is filled with the demo seed (``callcenter.services.demo.seed_demo``), calls through both
IVR branches, and cases of each type (one urgent, classified, assigned), then every page without a
path argument, and the detail pages of those calls and cases, is rendered for each demo login.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from html.parser import HTMLParser

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import Agent, Call, CallbackTask, Campaign, CampaignMember, Case, User
from callcenter.models.callback import CALLBACK_STATUSES
from callcenter.models.campaign import ATTEMPT_RESULTS, CAMPAIGN_STATUSES
from callcenter.models.console import PRESENCE_STATUSES
from callcenter.models.qa import ASSIGNMENT_PURPOSES, DISPUTE_STATUSES
from callcenter.services import campaigns, cases
from callcenter.services.demo import seed_demo
from callcenter.settings import Settings
from tests.web.factories import Account, login, make_call
from web import case_labels, labels
from web.nav import DESKS, NAV

ADMIN_PASSWORD = "demo-admin-2026"
# Endpoints not rendered as pages: streams, files, JSON, and routes that only redirect.
NOT_PAGES = frozenset({"console.events", "campaigns.progress_json", "calls.home", "auth.logout"})
# Pages that still show codes (docs/web.md, "Languages"); checked once they pass. None left.
KNOWN_TO_SHOW_CODES: frozenset[str] = frozenset()
LABEL_TABLES: tuple[Mapping[str, object], ...] = (
    labels.BRANCHES,
    labels.DISPOSITIONS,
    labels.HANGUP_SIDES,
    labels.DIRECTIONS,
    labels.TIERS,
    labels.RECORDING_STATUSES,
    labels.EVENT_KINDS,
    labels.ROLES,
    labels.SKILL_LEVELS,
    labels.NOTICE_KINDS,
    labels.AUDIT_ACTIONS,
    case_labels.CASE_TYPES,
    case_labels.CHANNELS,
    case_labels.STATUSES,
    case_labels.COMPLEXITIES,
    case_labels.URGENCIES,
    case_labels.REMEDIES,
    case_labels.FOLLOW_UPS,
    case_labels.ESCALATION_LEVELS,
    case_labels.EVENT_KINDS,
    case_labels.CALLBACK_OUTCOMES,
    labels.CALLBACK_KINDS,
    labels.CALLBACK_STATUSES,
    labels.ATTEMPT_RESULTS,
    labels.CAMPAIGN_MODES,
    labels.CAMPAIGN_STATUSES,
    labels.WRAPUP_CATEGORIES,
    labels.SCRIPT_OUTCOMES,
)
OTHER_CODES = (
    *PRESENCE_STATUSES,
    *CALLBACK_STATUSES,
    *CAMPAIGN_STATUSES,
    *ATTEMPT_RESULTS,
    *ASSIGNMENT_PURPOSES,
    *DISPUTE_STATUSES,
    "late",
)


HIDDEN_TAGS = ("script", "style", "code")


def internal_codes(settings: Settings) -> frozenset[str]:
    codes = {code for table in LABEL_TABLES for code in table}
    codes |= set(OTHER_CODES) | {shift.code for shift in settings.console.shifts}
    codes |= {category.code for category in settings.cases.categories}
    codes |= set(settings.console.wrapup_categories)
    return frozenset(codes)


class VisibleText(HTMLParser):
    """The text a reader sees: no tags, no attribute values, nothing of scripts or styles. Nor what
    is in ``<code>``: identifiers a person typed and others type in turn (an account's username, a
    queue's name for the dialplan, a department's code in the settings), shown as such."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN_TAGS:
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_TAGS and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible_text(page: str) -> str:
    parser = VisibleText()
    parser.feed(page)
    return " ".join(parser.parts)


def codes_shown(text: str, codes: Iterable[str]) -> list[str]:
    """The codes found as whole words (not inside a longer name such as ``route_complaint``)."""
    return sorted(
        code for code in codes if re.search(rf"(?<![\w.-]){re.escape(code)}(?![\w-]|\.\w)", text, re.ASCII)
    )


def test_codes_are_found_as_whole_words_only() -> None:
    codes = ("complaint", "fault_report", "ivr.node", "late")
    assert codes_shown(visible_text("<td>fault_report</td><p>ivr.node</p>"), codes) == [
        "fault_report",
        "ivr.node",
    ]
    assert codes_shown(visible_text('<td title="complaint">投诉</td> route_complaint'), codes) == []
    assert codes_shown(visible_text("<script>late</script><span>latest, plate</span>"), codes) == []
    assert codes_shown("迟到 late。", codes) == ["late"]


@pytest.fixture
def demo(app: Flask, db: Database, now: datetime) -> dict[str, Account]:
    """The demo logins (username → account) over calls and cases."""
    settings = app.extensions["callcenter"].settings
    with db.transaction() as session:
        logins = seed_demo(session, now=now, admin_password=ADMIN_PASSWORD)
        ids = {user.username: user.id for user in session.execute(select(User)).scalars()}
    accounts = {
        login.username: Account(ids[login.username], login.username, login.password) for login in logins
    }
    call_ids = [
        make_call(db, now, external_id=f"1700000000.{n}", start=now - timedelta(hours=n), branch=branch)
        for n, branch in enumerate(("complaint", "consultation", "complaint"), start=1)
    ]
    policy = cases.CasePolicy.from_settings(settings)
    with db.transaction() as session:
        agent = session.execute(select(User).where(User.username == "lina")).scalar_one()
        lead = session.execute(select(User).where(User.username == "sunli")).scalar_one()
        for n, case_type in enumerate(case_labels.CASE_TYPES):
            new = cases.NewCase(
                case_type=case_type,
                title=f"测试工单{n}",
                content="客户反映的问题",
                urgency="urgent" if n == 0 else "normal",
                contact_name="张三",
                contact_number="13800138000",
                queue_name="complaint",
                call_ids=[call_ids[n % len(call_ids)]],
            )
            case = cases.register_case(session, new, user=agent, policy=policy, now=now)
            if n == 0:
                cases.classify(
                    session, case.id, category="product", complexity="complex", urgency="urgent",
                    user=lead, policy=policy, now=now,
                )  # fmt: skip
                codes = [department.code for department in settings.departments]
                cases.assign(
                    session, case.id, department="after_sales", departments=codes, user=lead, now=now
                )
    callback_work(db, now)
    return accounts


def callback_work(db: Database, now: datetime) -> None:
    """Owed callbacks (one overdue, one done with a result) and a campaign task of the demo's
    callback specialist: the worklist, the shift view and the campaign pages show their codes' names."""
    with db.transaction() as session:
        owed = [
            campaigns.schedule_callback(
                session,
                key=f"desk:{kind}",
                kind=kind,
                number="13800138000",
                now=now - timedelta(hours=2),
                region="CN",
                ordinary_hours=1,
                note="客户来电未接通",
            )
            for kind in ("missed_call", "promised_reply")
        ]
        owed[1].status, owed[1].data = "done", {"last_result": "reached"}
        specialist = session.execute(select(Agent).join(User).where(User.username == "chenjing")).scalar_one()
        campaign = Campaign(
            name="VIP 回访", kind="key_account", mode="preview", status="active", timezone="Asia/Shanghai",
            due_from=now, created_at=now, updated_at=now,
        )  # fmt: skip
        task = campaigns.schedule_callback(
            session, key="desk:campaign", kind="key_account", number="13900139000", now=now,
            region="CN", ordinary_hours=0,
        )  # fmt: skip
        session.add(campaign)
        session.flush()
        session.add(CampaignMember(task_id=task.id, campaign_id=campaign.id, agent_id=specialist.id))


def page_paths(app: Flask, db: Database) -> Iterator[tuple[str, str]]:
    """(endpoint, path) of every GET page: those without arguments, and one call's and case's page."""
    with db.read() as session:
        call_id = session.execute(select(Call.id).order_by(Call.id)).scalars().first()
        case_ids = list(session.execute(select(Case.id).order_by(Case.id)).scalars())
        task_ids = list(session.execute(select(CallbackTask.id).order_by(CallbackTask.id)).scalars())
        campaign_ids = list(session.execute(select(Campaign.id).order_by(Campaign.id)).scalars())
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint in NOT_PAGES:
            continue
        if rule.endpoint.startswith(("static", "health.", "auth.")):
            continue
        if not rule.arguments:
            yield rule.endpoint, rule.rule
        elif rule.arguments == {"call_id"}:
            yield rule.endpoint, rule.rule.replace("<int:call_id>", str(call_id))
        elif rule.arguments == {"task_id"}:
            for task_id in task_ids:
                yield rule.endpoint, rule.rule.replace("<int:task_id>", str(task_id))
        elif rule.arguments == {"campaign_id"}:
            for campaign_id in campaign_ids:
                yield rule.endpoint, rule.rule.replace("<int:campaign_id>", str(campaign_id))
        elif rule.arguments == {"case_id"}:
            for case_id in case_ids:
                yield rule.endpoint, rule.rule.replace("<int:case_id>", str(case_id))


def signed_in(app: Flask, account: Account) -> FlaskClient:
    client = app.test_client()
    response = login(client, account)
    assert response.status_code == 302, account.username
    return client


def test_no_page_shows_an_internal_code_in_chinese(
    app: Flask, db: Database, demo: dict[str, Account]
) -> None:
    codes = internal_codes(app.extensions["callcenter"].settings)
    paths = list(page_paths(app, db))
    found: dict[tuple[str, str], list[str]] = {}
    rendered = 0
    for username, account in demo.items():
        client = signed_in(app, account)
        for endpoint, path in paths:
            response = client.get(path, query_string={"lang": "zh"})
            if response.status_code != 200 or endpoint in KNOWN_TO_SHOW_CODES:
                continue
            rendered += 1
            shown = codes_shown(visible_text(response.get_data(as_text=True)), codes)
            if shown:
                found[(username, path)] = shown
    assert rendered > 60  # the test saw the app: every login, many pages
    assert found == {}, "\n".join(f"{k}: {v}" for k, v in sorted(found.items()))


def test_each_demo_login_lands_on_its_desk_and_every_link_it_sees_opens(
    app: Flask, demo: dict[str, Account]
) -> None:
    desks = dict(DESKS)
    expected = {
        "admin": "/console/shift",  # the demo admin is a supervisor too: the shift view comes first
        "zhangwei": "/console",
        "lina": "/console",
        "wangfang": "/console",
        "sunli": "/console/shift",
        "chenjing": "/callbacks",
        "zhaomin": "/qa/",
        "liuqiang": "/cases",
        "zhoujie": "/cases",
    }
    assert set(expected) == set(demo)
    assert desks["department_handler"] == ("cases.index",)
    nav_link = re.compile(r'<a href="([^"]+)"[^>]*>')
    for username, account in demo.items():
        client = signed_in(app, account)
        home = client.get("/")
        assert home.status_code == 302 and home.headers["Location"] == expected[username], username
        page = client.get(home.headers["Location"])
        assert page.status_code == 200, username
        bar = page.get_data(as_text=True).split('class="mainnav"', 1)[1].split("</nav>", 1)[0]
        links = nav_link.findall(bar)
        assert home.headers["Location"] in links, username  # the desk is in the bar
        for link in links:
            assert client.get(link).status_code == 200, (username, link)
        # No entry of the table is hidden that would open, and none is shown that would answer 403.
        shown = set(links)
        for item in NAV:
            if item.endpoint not in app.view_functions:
                continue
            with app.test_request_context():
                path = url_for(item.endpoint)
            status = client.get(path).status_code
            assert status in (200, 403), (username, path, status)
            assert (status == 200) == (path in shown), (username, path, status)
