"""The case pages over HTTP: who may see and do what, CSRF, masking, escaping, attachments."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import Agent, AuditLog, Call, Case, Queue
from callcenter.settings import Settings
from tests.web.factories import Account, MakeUser, csrf_token, login, make_call, update_user
from web import create_app

SCRIPT_NAME = '<script>alert("x")</script>'


def with_agent(db: Database, account: Account, now: datetime, queue: str) -> None:
    with db.transaction() as session:
        found = session.execute(select(Queue).where(Queue.name == queue)).scalar_one_or_none()
        agent = Agent(name=account.username, user_id=account.id, created_at=now)
        agent.queues.append(found or Queue(name=queue, created_at=now))
        session.add(agent)


@pytest.fixture
def app(web_settings: Settings, db: Database, now: datetime) -> Flask:
    """The app on the suite's fixed clock: case numbers and deadlines do not depend on the day."""
    app = create_app(web_settings, db, clock=lambda: now)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def agent(make_user: MakeUser, db: Database, now: datetime) -> Account:
    account = make_user("agent", ("agent_complaint",))
    with_agent(db, account, now, "complaint")
    return account


def handled_by(db: Database, call_id: int, account: Account) -> None:
    with db.transaction() as session:
        call = session.get(Call, call_id)
        assert call is not None
        call.agent_id = session.execute(select(Agent.id).where(Agent.user_id == account.id)).scalar_one()


def create_case(client: FlaskClient, *, call_id: int | None = None, **fields: str) -> int:
    path = f"/cases/new?call_id={call_id}" if call_id else "/cases/new"
    data = {
        "csrf_token": csrf_token(client, path),
        "case_type": "complaint",
        "channel": "phone",
        "category": "product",
        "complexity": "ordinary",
        "urgency": "normal",
        "title": "门打不开",
        "content": "设备门打不开",
        "contact_name": "李四",
        "contact_number": "13912345678",
        **({"call_id": str(call_id)} if call_id else {}),
        **fields,
    }
    response = client.post("/cases/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    match = re.search(r"/cases/(\d+)$", response.headers["Location"])
    assert match
    return int(match.group(1))


def post_action(client: FlaskClient, case_id: int, action: str, **data: str) -> int:
    token = csrf_token(client, f"/cases/{case_id}")
    return client.post(f"/cases/{case_id}/{action}", data={"csrf_token": token, **data}).status_code


def test_cases_need_a_login_and_a_case_role(client: FlaskClient, make_user: MakeUser) -> None:
    assert client.get("/cases").status_code == 302
    login(client, make_user("qa", ("qa",)))
    assert client.get("/cases").status_code == 403
    assert client.get("/cases/new").status_code == 403


def test_a_case_from_a_call_is_prefilled_and_linked(
    client: FlaskClient, agent: Account, db: Database, now: datetime
) -> None:
    call_id = make_call(db, now, external_id="c-1", start=now - timedelta(minutes=5), caller_name="王五")
    handled_by(db, call_id, agent)  # the handling context: the full number is prefilled
    login(client, agent)
    form = client.get(f"/cases/new?call_id={call_id}").get_data(as_text=True)
    assert 'value="王五"' in form and 'value="+8613800138000"' in form
    assert re.search(r'<option selected value="complaint">', form)
    case_id = create_case(client, call_id=call_id, contact_name="王五", contact_number="+8613800138000")
    with db.read() as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert [call.id for call in case.calls] == [call_id]
        assert (case.queue_name, case.number) == ("complaint", "TS-20261123-0001")
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert f'data-call-id="{call_id}"' in page
    assert client.get("/cases/new?call_id=999").status_code == 404


def test_posts_without_a_csrf_token_are_refused(client: FlaskClient, agent: Account) -> None:
    login(client, agent)
    case_id = create_case(client)
    assert client.post(f"/cases/{case_id}/escalate", data={"escalate-note": "x"}).status_code == 400
    assert client.post("/cases/new", data={"title": "x", "case_type": "complaint"}).status_code == 400


def test_only_the_complaint_head_extends(
    client: FlaskClient, agent: Account, make_user: MakeUser, db: Database
) -> None:
    login(client, agent)
    case_id = create_case(client)
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert 'data-action="extend"' not in page
    data = {"extend-new_due": "2026-12-31", "extend-reason": "等配件"}
    assert post_action(client, case_id, "extend", **data) == 403
    head = make_user("head", ("complaint_head",))
    other = client.application.test_client()
    login(other, head)
    assert 'data-action="extend"' in other.get(f"/cases/{case_id}").get_data(as_text=True)
    assert post_action(other, case_id, "extend", **data) == 302
    with db.read() as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert case.resolution_due_at.isoformat() == "2026-12-31T15:59:59+00:00"
        assert session.execute(select(AuditLog.action)).scalars().all() == ["case.extend"]


def test_numbers_are_masked_in_lists_and_for_outsiders(
    client: FlaskClient, agent: Account, make_user: MakeUser
) -> None:
    login(client, agent)
    case_id = create_case(client)
    listing = client.get("/cases").get_data(as_text=True)
    assert "139****5678" in listing and "13912345678" not in listing
    assert "+8613912345678" in client.get(f"/cases/{case_id}").get_data(as_text=True)  # handling it
    handler = make_user("qa_handler", ("department_handler",))
    other = client.application.test_client()
    login(other, handler)
    assert other.get(f"/cases/{case_id}").status_code == 403  # not their department (yet)
    supervisor = client.application.test_client()
    login(supervisor, make_user("sup", ("supervisor",)))
    assert "+8613912345678" in supervisor.get(f"/cases/{case_id}").get_data(as_text=True)


def test_agents_see_their_queues_cases_only(
    client: FlaskClient, agent: Account, make_user: MakeUser, db: Database, now: datetime
) -> None:
    login(client, agent)
    case_id = create_case(client, title="投诉一")
    colleague = make_user("colleague", ("agent_complaint",))
    with_agent(db, colleague, now, "complaint")
    outsider = make_user("outsider", ("agent_consultation",))
    with_agent(db, outsider, now, "consultation")
    for account, visible in ((colleague, True), (outsider, False)):
        other = client.application.test_client()
        login(other, account)
        assert ("投诉一" in other.get("/cases").get_data(as_text=True)) is visible
        assert other.get(f"/cases/{case_id}").status_code == (200 if visible else 403)


def test_department_handlers_see_their_departments_cases(
    client: FlaskClient, agent: Account, make_user: MakeUser, db: Database
) -> None:
    login(client, agent)
    case_id = create_case(client)
    assert post_action(client, case_id, "classify", **{
        "classify-category": "product", "classify-complexity": "ordinary", "classify-urgency": "normal"
    }) == 302  # fmt: skip
    assert post_action(client, case_id, "assign", **{"assign-department": "after_sales"}) == 302
    handler = make_user("handler", ("department_handler",))
    update_user(db, handler, department="after_sales")
    stranger = make_user("stranger", ("department_handler",))
    update_user(db, stranger, department="tech_rd")
    mine = client.application.test_client()
    login(mine, handler)
    page = mine.get(f"/cases/{case_id}").get_data(as_text=True)
    assert 'data-action="sign_off"' in page and 'data-action="extend"' not in page
    assert post_action(mine, case_id, "sign_off") == 302
    theirs = client.application.test_client()
    login(theirs, stranger)
    assert theirs.get(f"/cases/{case_id}").status_code == 403
    assert "TS-" not in theirs.get("/cases").get_data(as_text=True)
    with db.read() as session:
        case = session.get(Case, case_id)
        assert case is not None and (case.status, case.owner_id) == ("in_progress", handler.id)


def test_names_from_the_network_are_escaped(
    client: FlaskClient, agent: Account, db: Database, now: datetime
) -> None:
    call_id = make_call(db, now, external_id="c-x", start=now, caller_name=SCRIPT_NAME)
    login(client, agent)
    form = client.get(f"/cases/new?call_id={call_id}").get_data(as_text=True)
    assert SCRIPT_NAME not in form and "&lt;script&gt;" in form
    case_id = create_case(client, call_id=call_id, contact_name=SCRIPT_NAME, title=SCRIPT_NAME)
    for page in (client.get(f"/cases/{case_id}"), client.get("/cases")):
        text = page.get_data(as_text=True)
        assert SCRIPT_NAME not in text and "&lt;script&gt;alert(" in text


def test_attachments_are_limited_stored_and_downloaded_as_files(
    client: FlaskClient, agent: Account, make_user: MakeUser, db: Database
) -> None:
    login(client, agent)
    case_id = create_case(client)
    token = csrf_token(client, f"/cases/{case_id}")
    evidence = b"<html><script>alert(1)</script></html>"
    response = client.post(
        f"/cases/{case_id}/attach",
        data={"csrf_token": token, "attach-file": (io.BytesIO(evidence), "../../evil.html")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    with db.read() as session:
        case = session.get(Case, case_id)
        assert case is not None
        (attachment,) = case.attachments
        assert (attachment.filename, attachment.size_bytes) == ("evil.html", len(evidence))
    download = client.get(f"/cases/{case_id}/attachments/{attachment.id}")
    assert download.status_code == 200 and download.data == evidence
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["Content-Disposition"].startswith("attachment")
    download.close()
    outsider = client.application.test_client()
    login(outsider, make_user("outsider", ("department_handler",)))
    assert outsider.get(f"/cases/{case_id}/attachments/{attachment.id}").status_code == 403
    big = b"x" * (20 * 1_000_000 + 1)
    token = csrf_token(client, f"/cases/{case_id}")
    response = client.post(
        f"/cases/{case_id}/attach",
        data={"csrf_token": token, "attach-file": (io.BytesIO(big), "big.bin")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "20 MB" in response.get_data(as_text=True)
    with db.read() as session:
        assert len(session.execute(select(AuditLog)).scalars().all()) == 1  # the one download


def test_a_walk_in_case_by_hand_and_the_search(client: FlaskClient, agent: Account) -> None:
    login(client, agent)
    create_case(client, channel="walk_in", case_type="suggestion", title="建议增加网点", contact_number="")
    create_case(client, title="门打不开", contact_name="赵六")
    found = client.get("/cases", query_string={"q": "赵六"}).get_data(as_text=True)
    assert "门打不开" in found and "建议增加网点" not in found
    found = client.get("/cases", query_string={"case_type": "suggestion"}).get_data(as_text=True)
    assert "建议增加网点" in found and "门打不开" not in found
    found = client.get("/cases", query_string={"q": "TS-20261123-0002"}).get_data(as_text=True)
    assert "门打不开" in found and "建议增加网点" not in found
    found = client.get("/cases", query_string={"number": "139 1234 5678"}).get_data(as_text=True)
    assert "门打不开" in found and "建议增加网点" not in found
    assert "门打不开" not in client.get("/cases", query_string={"delayed": "y"}).get_data(as_text=True)


def test_a_complaint_through_every_form(
    client: FlaskClient, agent: Account, make_user: MakeUser, db: Database, now: datetime
) -> None:
    """Each action's form, posted by the role that may use it, moves the case one step."""
    handler, head = (
        make_user("handler", ("department_handler",)),
        make_user("ashead", ("department_handler",)),
    )
    update_user(db, handler, department="after_sales")
    update_user(db, head, department="after_sales", is_department_head=True)
    specialist, leader = make_user("cb", ("callback_specialist",)), make_user("leader", ("team_leader",))
    clients: dict[str, FlaskClient] = {"agent": client}
    for name, account in (("handler", handler), ("head", head), ("cb", specialist), ("leader", leader)):
        clients[name] = client.application.test_client()
        login(clients[name], account)
    login(client, agent)
    case_id = create_case(client, promised_reply_at="2026-11-23T15:00")
    steps = [
        ("agent", "classify", {"classify-category": "product", "classify-complexity": "complex",
                               "classify-urgency": "normal"}, "classified"),
        ("agent", "assign", {"assign-department": "after_sales"}, "assigned"),
        ("handler", "sign_off", {}, "in_progress"),
        ("handler", "submit_solution", {"solution-solution": "更换门锁", "solution-remedy": "exchange"},
         "solution_pending_approval"),
        ("handler", "approve_solution", {"approve-decision": "approve"}, "solution_pending_approval"),
        ("head", "approve_solution", {"approve-decision": "approve"}, "solution_approved"),
        ("agent", "send_reply", {"send_reply-note": "已安排更换"}, "solution_approved"),  # not audited
        ("handler", "audit_reply", {"audit-decision": "approve"}, "solution_approved"),
        ("agent", "send_reply", {"send_reply-note": "已安排更换"}, "customer_replied"),
        ("leader", "close", {}, "customer_replied"),  # the complaint callback first
        ("cb", "complete_callback", {"callback-outcome": "reached", "callback-satisfaction": "2"},
         "callback_done"),
        ("leader", "close", {"close-note": "完成"}, "closed"),
    ]  # fmt: skip
    for who, action, data, expected in steps:
        status = post_action(clients[who], case_id, action, **data)
        with db.read() as session:
            case = session.get(Case, case_id)
            assert case is not None
            assert (action, status, case.status) == (action, 403 if who == "handler" and action ==
                                                     "approve_solution" else 302, expected)  # fmt: skip
    with db.read() as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert (case.satisfaction, case.follow_up, case.promised_reply_at is not None) == (
            2,
            "dissatisfied_with_result",
            True,
        )
    dissatisfied = client.get("/cases", query_string={"dissatisfied": "y"}).get_data(as_text=True)
    assert f'data-case-id="{case_id}"' in dissatisfied


def test_notices_are_read_by_their_owner(
    client: FlaskClient, agent: Account, make_user: MakeUser, db: Database, now: datetime
) -> None:
    manager = make_user("manager", ("manager",))
    login(client, agent)
    create_case(client, urgency="major")
    boss = client.application.test_client()
    login(boss, manager)
    page = boss.get("/cases/notices").get_data(as_text=True)
    match = re.search(r'data-notice-id="(\d+)"', page)
    assert match and "TS-20261123-0001" in page
    notice_id = match.group(1)
    token = csrf_token(boss, "/cases/notices")
    mine = csrf_token(client, "/cases/new")
    assert client.post(f"/cases/notices/{notice_id}/read", data={"csrf_token": mine}).status_code == 404
    assert boss.post(f"/cases/notices/{notice_id}/read", data={"csrf_token": token}).status_code == 302
    assert "data-notice-id" not in boss.get("/cases/notices").get_data(as_text=True)


def test_the_classify_form_opens_with_the_cases_values(
    client: FlaskClient, agent: Account, make_user: MakeUser
) -> None:
    """An urgent, complex case: saving the form unchanged must not downgrade it to 普通/ordinary."""
    login(client, agent)
    case_id = create_case(client, urgency="urgent", complexity="complex", category="after_sales")
    leader = client.application.test_client()
    login(leader, make_user("leader", ("team_leader",)))
    page = leader.get(f"/cases/{case_id}").get_data(as_text=True)
    form = page.split('id="classify-urgency"', 1)[1].split("</select>", 1)[0]
    assert re.search(r'<option selected value="urgent">', form), form
    assert not re.search(r'<option selected value="normal">', form)
    complexity = page.split('id="classify-complexity"', 1)[1].split("</select>", 1)[0]
    assert re.search(r'<option selected value="complex">', complexity)
    category = page.split('id="classify-category"', 1)[1].split("</select>", 1)[0]
    assert re.search(r'<option selected value="after_sales">', category)


def test_the_case_list_pages_with_its_total_in_a_stable_order(
    client: FlaskClient, agent: Account, db: Database, now: datetime
) -> None:
    login(client, agent)
    created = [create_case(client, title=f"工单{n}") for n in range(53)]  # same registration time
    first = client.get("/cases").get_data(as_text=True)
    assert "共 53 条" in first and "第 1 / 2 页" in first
    second = client.get("/cases?page=2").get_data(as_text=True)
    ids = [int(found) for found in re.findall(r'data-case-id="(\d+)"', first + second)]
    assert ids == sorted(created, reverse=True)  # newest first, the id breaking the tie; none twice
    assert 'href="/cases?page=2"' in first and 'rel="prev"' in second
    filtered = client.get("/cases?q=工单5").get_data(as_text=True)  # 工单5, 工单50…52
    assert "共 4 条" in filtered and "page=2" not in filtered
