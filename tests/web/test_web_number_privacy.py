"""Full numbers never reach a role that sees them masked (REQUIREMENTS G65): the new-case form
prefilled from a call, and the case search by number (the call search's rule, from one place)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import Case
from callcenter.settings import Settings
from tests.web.factories import Account, MakeUser, login, make_call
from tests.web.test_web_cases import create_case, handled_by, with_agent
from web import calls, cases, create_app, number_rules

FULL = "+8613800138000"
MASKED = "138****8000"


@pytest.fixture
def app(web_settings: Settings, db: Database, now: datetime) -> Flask:
    app = create_app(web_settings, db, clock=lambda: now)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def agent(make_user: MakeUser, db: Database, now: datetime) -> Account:
    account = make_user("agent", ("agent_complaint",))
    with_agent(db, account, now, "complaint")
    return account


def test_a_call_not_handled_by_the_agent_prefills_the_number_masked(
    client: FlaskClient, agent: Account, db: Database, now: datetime
) -> None:
    call_id = make_call(db, now, external_id="c-1", start=now - timedelta(minutes=5))
    login(client, agent)
    form = client.get(f"/cases/new?call_id={call_id}").get_data(as_text=True)
    assert FULL not in form and "13800138000" not in form
    assert MASKED in form
    case_id = create_case(client, call_id=call_id, contact_number="")
    with db.read() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.contact_e164 == FULL  # the case still takes the call's number


def test_the_handling_agent_and_supervisors_get_the_full_number(
    client: FlaskClient, agent: Account, make_user: MakeUser, db: Database, now: datetime
) -> None:
    call_id = make_call(db, now, external_id="c-1", start=now - timedelta(minutes=5))
    handled_by(db, call_id, agent)
    login(client, agent)
    assert f'value="{FULL}"' in client.get(f"/cases/new?call_id={call_id}").get_data(as_text=True)
    other = client.application.test_client()
    login(other, make_user("boss", ("supervisor",)))
    assert f'value="{FULL}"' in other.get(f"/cases/new?call_id={call_id}").get_data(as_text=True)


def case_titles(client: FlaskClient, number: str) -> str:
    return client.get("/cases", query_string={"number": number}).get_data(as_text=True)


def test_masked_roles_search_cases_by_the_full_number_only(
    client: FlaskClient, agent: Account, make_user: MakeUser
) -> None:
    login(client, agent)
    create_case(client, title="门打不开", contact_number="13912345678")
    assert "门打不开" in case_titles(client, "139 1234 5678")  # a full number, any form
    assert "门打不开" in case_titles(client, "+86 139-1234-5678")
    for part in ("1391234", "5678", "912345"):  # 10 such searches rebuilt a masked number
        page = case_titles(client, part)
        assert "门打不开" not in page and "请输入完整号码" in page
    assert "门打不开" not in case_titles(client, "3")
    boss = client.application.test_client()
    login(boss, make_user("boss", ("supervisor",)))  # a need-to-know role may search by part
    assert "门打不开" in case_titles(boss, "1234567")
    assert "门打不开" not in case_titles(boss, "7654321")
    assert "门打不开" not in case_titles(boss, "12")  # too short for anyone


def test_the_call_and_case_searches_share_one_rule(db: Database) -> None:
    assert calls.read_number_search is number_rules.read_number_search
    assert cases.read_number_search is number_rules.read_number_search
    with db.read() as session:
        assert session.execute(select(Case)).first() is None
