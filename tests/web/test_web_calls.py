"""The call log and a call's page: order, paging, time zone, masking, escaping, timeline."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient

from callcenter.db import Database
from callcenter.services.calls import CallSeen, Entry, record_call
from callcenter.services.demo import seed_demo
from tests.web.factories import MakeUser, login, make_call

FULL = "+8613800138000"
MASKED = "138****8000"
XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
ROW_ID = re.compile(r'data-call-id="(\d+)"')


@pytest.fixture
def agent_client(client: FlaskClient, make_user: MakeUser) -> FlaskClient:
    login(client, make_user("agent", ("agent_consultation",)))
    return client


def listed_ids(client: FlaskClient, path: str = "/calls") -> list[int]:
    response = client.get(path)
    assert response.status_code == 200
    return [int(found) for found in ROW_ID.findall(response.get_data(as_text=True))]


def test_home_is_the_agents_console(agent_client: FlaskClient) -> None:
    response = agent_client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console"


def test_empty_call_log(agent_client: FlaskClient) -> None:
    assert "暂无通话记录" in agent_client.get("/calls").get_data(as_text=True)


def test_calls_are_listed_newest_first(agent_client: FlaskClient, db: Database, now: datetime) -> None:
    middle = make_call(db, now, external_id="1.2", start=now - timedelta(minutes=5))
    newest = make_call(db, now, external_id="1.3", start=now)
    oldest = make_call(db, now, external_id="1.1", start=now - timedelta(hours=2))
    assert listed_ids(agent_client) == [newest, middle, oldest]


def test_paging_goes_to_older_calls(
    agent_client: FlaskClient, db: Database, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("web.calls.PAGE_SIZE", 2)
    ids = [make_call(db, now, external_id=f"1.{n}", start=now - timedelta(minutes=n)) for n in range(3)]
    page = agent_client.get("/calls").get_data(as_text=True)
    assert [int(found) for found in ROW_ID.findall(page)] == ids[:2]
    assert f'href="/calls?before={ids[1]}"' in page
    assert listed_ids(agent_client, f"/calls?before={ids[1]}") == ids[2:]
    assert listed_ids(agent_client, "/calls?before=not-a-number") == ids[:2]


def test_call_log_row(agent_client: FlaskClient, db: Database, now: datetime) -> None:
    make_call(db, now, external_id="1.1", start=now, branch="complaint", caller_name="张三")
    page = agent_client.get("/calls").get_data(as_text=True)
    assert "2026-11-23 10:00:00" in page  # 02:00 UTC in Asia/Shanghai
    assert "张三" in page
    assert "投诉" in page
    assert "已进入队列" in page
    assert "欢迎 → 主菜单 → 转投诉建议" in page  # the nodes by their display names


@pytest.mark.parametrize("roles", [("agent_consultation",), ("qa",), ("supervisor", "manager")])
def test_call_log_always_masks_numbers(
    client: FlaskClient, make_user: MakeUser, db: Database, now: datetime, roles: tuple[str, ...]
) -> None:
    make_call(db, now, external_id="1.1", start=now, from_raw="13800138000")
    login(client, make_user("viewer", roles))
    page = client.get("/calls").get_data(as_text=True)
    assert MASKED in page
    assert "13800138000" not in page
    assert "0138000" not in page


def test_network_caller_name_is_escaped_in_the_log_and_on_the_call(
    agent_client: FlaskClient, db: Database, now: datetime
) -> None:
    call_id = make_call(db, now, external_id="1.1", start=now, caller_name=XSS)
    for path in ("/calls", f"/calls/{call_id}"):
        page = agent_client.get(path).get_data(as_text=True)
        assert ESCAPED in page, path
        assert XSS not in page, path


def test_call_page_shows_summary_and_timeline(agent_client: FlaskClient, db: Database, now: datetime) -> None:
    call_id = make_call(db, now, external_id="1700000000.42", start=now, branch="complaint")
    response = agent_client.get(f"/calls/{call_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    summary = ("asterisk", "1700000000.42", "呼入", "投诉", "complaint", "已进入队列", "2026-11-23 10:00:00")
    for expected in summary:
        assert expected in page, expected
    timeline = page.split("时间线", 1)[1]
    for expected in (
        "2026-11-23 10:00:06",
        "进入语音导航节点",  # ivr.node
        "来电者按键",  # ivr.input
        "转入队列",  # ivr.route
        'title="ivr.route"',  # the raw kind, for support
        "主菜单",  # main_menu
        "转投诉建议",  # route_complaint
        "按键 2 · 菜单选择",
        "队列 complaint · 分支 投诉",  # no queue of that name: shown as stored
        'title="digits=2, outcome=option"',  # the data as stored, for support
    ):
        assert expected in timeline, expected
    assert timeline.index("欢迎") < timeline.index("转投诉建议")
    assert "暂无录音" in page


def test_call_page_shows_the_customer_archive(
    client: FlaskClient, make_user: MakeUser, db: Database, now: datetime
) -> None:
    with db.transaction() as session:
        seed_demo(session, now=now, admin_password="admin-password-1")
    call_id = make_call(db, now, external_id="1.1", start=now, from_raw="13800138000", caller_name="")
    login(client, make_user())
    page = client.get(f"/calls/{call_id}").get_data(as_text=True)
    assert "张三" in page  # the archive's name, as the network sent none
    assert "VIP" in page
    assert "投诉建议" in page  # the queue's title from the queue table


@pytest.mark.parametrize("role", ["supervisor", "team_leader", "manager", "complaint_head"])
def test_roles_with_a_need_to_know_see_the_full_number(
    client: FlaskClient, make_user: MakeUser, db: Database, now: datetime, role: str
) -> None:
    call_id = make_call(db, now, external_id="1.1", start=now)
    login(client, make_user("viewer", (role,)))
    page = client.get(f"/calls/{call_id}").get_data(as_text=True)
    assert FULL in page
    assert MASKED not in page


@pytest.mark.parametrize("role", ["agent_consultation", "agent_complaint", "qa", "callback_specialist"])
def test_other_roles_see_the_number_masked(
    client: FlaskClient, make_user: MakeUser, db: Database, now: datetime, role: str
) -> None:
    call_id = make_call(db, now, external_id="1.1", start=now)
    login(client, make_user("viewer", (role,)))
    page = client.get(f"/calls/{call_id}").get_data(as_text=True)
    assert MASKED in page
    assert "13800138000" not in page
    assert "0138000" not in page


@pytest.mark.parametrize("path", ["/calls/999999", "/calls/abc", "/calls/-1"])
def test_unknown_call_is_404(agent_client: FlaskClient, path: str) -> None:
    response = agent_client.get(path)
    assert response.status_code == 404
    assert "未找到" in response.get_data(as_text=True)


def test_a_call_is_found_by_its_key(agent_client: FlaskClient, db: Database, now: datetime) -> None:
    call_id = make_call(db, now, external_id="1700000000.42", start=now)
    response = agent_client.get("/calls/asterisk/1700000000.42")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/calls/{call_id}")
    assert agent_client.get("/calls/asterisk/1700000000.99").status_code == 404


def test_call_page_says_who_answered_who_hung_up_the_transfer_and_the_missed_ring(
    agent_client: FlaskClient, db: Database, now: datetime
) -> None:
    """What an operator reads the next morning: the agent, the side that ended it, where the call
    was transferred and how long the caller talked there, and who was rung in vain."""
    start = now - timedelta(minutes=5)
    connected = start + timedelta(seconds=40)
    member = {
        "queue": "consultation",
        "interface": "PJSIP/1003",
        "member": "王芳",
        "channel": "Local/100@in-1;2",
    }
    ami = [
        Entry("ami:j", "queue.join", start + timedelta(seconds=10), "ami", seq=10, data=member),
        Entry("ami:m", "agent.missed", start + timedelta(seconds=30), "ami", seq=25,
              data={**member, "interface": "PJSIP/1001", "member": "张伟", "ring_s": 20.0}),
        Entry("ami:c", "agent.connect", connected, "ami", seq=30, data={**member, "holdtime": 30}),
        Entry("web:t", "call.transfer", connected + timedelta(seconds=60), "web", seq=40,
              data={"type": "blind", "department_name": "售后服务部", "result": "Success"}),
        Entry("ami:h", "call.hangup", connected + timedelta(seconds=90), "ami", seq=60,
              data={"channel": "Local/100@in-1;1", "first_leg": True, "cause": 16}),
    ]  # fmt: skip
    with db.transaction() as session:
        seen = CallSeen(channel="asterisk", external_id="1.9", at=start, from_raw="13800138000")
        call_id = record_call(session, seen, ami, region="CN", now=now).id
    page = agent_client.get(f"/calls/{call_id}").get_data(as_text=True)
    assert re.search(r'class="hangup-side">已转接<', page)
    assert re.search(r'class="transfers"><div>[^<]*售后服务部 · 通话 0:30</div>', page)
    assert re.search(r'class="missed-rings"><div>[^<]*张伟 · 振铃 20 秒</div>', page)
    assert re.search(r"<dt>通话时长</dt><dd>1:00</dd>", page)  # the agent's part, up to the transfer
