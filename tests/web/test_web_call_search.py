"""Searching the call log from the page: filters, masking, who may search by part of a number, paging."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import Agent, Call, Queue
from tests.web.factories import MakeUser, login, make_call

ROW_ID = re.compile(r'data-call-id="(\d+)"')
PARTIAL_REFUSED = "请输入完整号码:您的角色不能按部分号码查询。"


def listed(client: FlaskClient, query: dict[str, str]) -> tuple[list[int], str]:
    response = client.get("/calls", query_string=query)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    return [int(found) for found in ROW_ID.findall(page)], page


@pytest.fixture
def calls(db: Database, now: datetime) -> dict[str, int]:
    made = {
        "vip": make_call(db, now, external_id="1.1", start=now - timedelta(days=1), from_raw="13800138000"),
        "shop": make_call(
            db, now, external_id="1.2", start=now, from_raw="02161234567", caller_name="上海贸易"
        ),
    }
    with db.transaction() as session:
        queue = session.execute(select(Queue).where(Queue.name == "complaint")).scalar_one_or_none()
        queue = queue or Queue(name="vip_q", title_zh="贵宾队列", title_en="VIP queue", created_at=now)
        agent = Agent(name="张伟", extension="PJSIP/1001", created_at=now)
        session.add_all([queue, agent])
        session.flush()
        vip = session.get(Call, made["vip"])
        assert vip is not None
        vip.queue_id, vip.agent_id, vip.disposition = queue.id, agent.id, "answered"
        made["queue"], made["agent"] = queue.id, agent.id
    return made


def test_an_agent_searches_by_full_number_in_any_form(
    client: FlaskClient, make_user: MakeUser, calls: dict[str, int]
) -> None:
    login(client, make_user("agent", ("agent_complaint",)))
    for typed in ("+8613800138000", "138 0013 8000", "13800138000"):
        found, page = listed(client, {"number": typed})
        assert found == [calls["vip"]], typed
        assert "138****8000" in page  # still masked in the list
        assert 'value="' + typed + '"' in page  # the search box keeps what was typed


def test_an_agent_may_not_search_by_part_of_a_number(
    client: FlaskClient, make_user: MakeUser, calls: dict[str, int]
) -> None:
    login(client, make_user("agent", ("agent_complaint",)))
    found, page = listed(client, {"number": "1380013"})
    assert found == []
    assert PARTIAL_REFUSED in page


@pytest.mark.parametrize("role", ["supervisor", "team_leader"])
def test_need_to_know_roles_search_by_part_of_a_number(
    client: FlaskClient, make_user: MakeUser, calls: dict[str, int], role: str
) -> None:
    login(client, make_user("lead", (role,)))
    assert listed(client, {"number": "8000"})[0] == [calls["vip"]]
    assert listed(client, {"number": "021-6123"})[0] == [calls["shop"]]  # national form, trunk 0 dropped
    _found, page = listed(client, {"number": "8000"})
    assert "138****8000" in page and "13800138000" not in page  # lists stay masked for them too


def test_the_other_filters(client: FlaskClient, make_user: MakeUser, calls: dict[str, int]) -> None:
    login(client, make_user("qa", ("qa",)))
    assert listed(client, {"name": "贸易"})[0] == [calls["shop"]]
    assert listed(client, {"date_from": "2026-11-23", "date_to": "2026-11-23"})[0] == [calls["shop"]]
    assert listed(client, {"date_to": "2026-11-22"})[0] == [calls["vip"]]
    assert listed(client, {"queue": str(calls["queue"])})[0] == [calls["vip"]]
    found, page = listed(client, {"agent": str(calls["agent"])})
    assert found == [calls["vip"]] and "张伟" in page
    assert listed(client, {"disposition": "answered"})[0] == [calls["vip"]]
    assert listed(client, {"direction": "outbound"})[0] == []
    found, page = listed(client, {"direction": "outbound"})
    assert "没有符合条件的通话。" in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"date_from": "2026-11-23", "date_to": "2026-11-01"}, "结束日期早于开始日期。"),
        ({"date_from": "yesterday"}, "不是有效的日期值。"),
        ({"number": "12"}, "请输入电话号码,或至少其中三位数字。"),
        ({"disposition": "exploded"}, "不是有效的选择"),
        ({"queue": "x"}, "无效的选项。"),
    ],
)
def test_bad_searches_say_why(
    client: FlaskClient, make_user: MakeUser, calls: dict[str, int], query: dict[str, str], message: str
) -> None:
    login(client, make_user("lead", ("supervisor",)))
    found, page = listed(client, query)
    assert found == []
    assert message in page


def test_paging_keeps_the_search(
    client: FlaskClient, make_user: MakeUser, db: Database, now: datetime
) -> None:
    made = [
        make_call(
            db, now, external_id=f"2.{index}", start=now + timedelta(seconds=index), from_raw="13900139000"
        )
        for index in range(53)
    ]
    make_call(db, now, external_id="3.1", start=now + timedelta(hours=1), from_raw="15000150000")
    login(client, make_user("agent", ("agent_consultation",)))
    first, page = listed(client, {"number": "13900139000"})
    assert first == list(reversed(made))[:50]
    older = re.search(r'href="([^"]+)" rel="next"', page)
    assert older is not None
    href = older.group(1).replace("&amp;", "&")
    assert "number=13900139000" in href
    second = client.get(href).get_data(as_text=True)
    assert [int(found) for found in ROW_ID.findall(second)] == list(reversed(made))[50:]
