"""Wrap-up (B14), unlogged calls, and the screen-pop card (A6, A8, B18), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from callcenter.db import Database
from callcenter.models import AgentPresence, Call, Caller
from callcenter.services import presence, screenpop, wrapup
from callcenter.services.presence import ConsoleError
from callcenter.services.screenpop import AgentView
from callcenter.settings import Settings
from tests.conftest import FIXED_NOW, make_settings
from tests.console.factories import answered_call, make_agent, open_case


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    return make_settings(
        tmp_path, db.url, organisation={"company_name": "星河电器", "department": "客户服务中心"}
    )


def _wrap(db: Database, settings: Settings, call_id: int, agent_id: int | None, **kw: object) -> Call:
    args = {"category": "consultation", "note": "已解答", "user_id": None, "may_wrap_any": False}
    args.update(kw)
    with db.transaction() as session:
        return wrapup.wrap_up(
            session,
            call_id,
            agent_id=agent_id,
            now=FIXED_NOW,
            console=settings.console,
            zone=settings.zone,
            **args,  # type: ignore[arg-type]
        )


def test_wrap_up_needs_a_category_and_a_note_and_frees_the_agent(db: Database, settings: Settings) -> None:
    agent_id = make_agent(db, FIXED_NOW, user_id=None)
    call_id = answered_call(db, FIXED_NOW, linkedid="1795400000.1", start=FIXED_NOW - timedelta(minutes=5))
    options = {"now": FIXED_NOW, "console": settings.console, "zone": settings.zone}
    with db.transaction() as session:
        assert wrapup.call_connected(session, agent_id, call_id, **options) == "on_call"  # type: ignore[arg-type]
        assert wrapup.call_ended(session, agent_id, call_id, **options) == "wrap_up"  # type: ignore[arg-type]
    with pytest.raises(ConsoleError, match="category"):
        _wrap(db, settings, call_id, agent_id, category="lunch")
    with pytest.raises(ConsoleError, match="note"):
        _wrap(db, settings, call_id, agent_id, note="   ")
    with pytest.raises(ConsoleError, match="not taken by you"):
        _wrap(db, settings, call_id, agent_id + 1)
    _wrap(db, settings, call_id, agent_id)
    with db.read() as session:
        call = session.get(Call, call_id)
        assert call is not None and (call.wrapup_category, call.wrapup_note) == ("consultation", "已解答")
        assert call.wrapped_up_at == FIXED_NOW
        row = session.get(AgentPresence, agent_id)
        assert row is not None and row.status == "available" and row.call_id is None


def test_the_call_moves_presence_and_a_wrap_up_during_the_call_frees_the_agent_at_its_end(
    db: Database, settings: Settings
) -> None:
    agent_id = make_agent(db, FIXED_NOW, user_id=None)
    call_id = answered_call(db, FIXED_NOW, linkedid="1795400000.2", start=FIXED_NOW - timedelta(minutes=5))
    options = {"now": FIXED_NOW, "console": settings.console, "zone": settings.zone}
    with db.transaction() as session:
        presence.set_presence(session, agent_id, "available", **options)  # type: ignore[arg-type]
        assert wrapup.call_connected(session, agent_id, call_id, **options) == "on_call"  # type: ignore[arg-type]
        assert wrapup.call_connected(session, agent_id, call_id, **options) is None  # type: ignore[arg-type]
    _wrap(db, settings, call_id, agent_id)  # while still talking: stays on the call
    with db.read() as session:
        row = session.get(AgentPresence, agent_id)
        assert row is not None and (row.status, row.call_id) == ("on_call", call_id)
    with db.transaction() as session:
        assert wrapup.agents_on_call(session, call_id) == [agent_id]
        assert wrapup.call_ended(session, agent_id, call_id, **options) == "available"  # type: ignore[arg-type]
        assert wrapup.call_ended(session, agent_id, call_id, **options) is None  # type: ignore[arg-type]
        statuses = [row.status for row in presence.history(session, agent_id, since=FIXED_NOW)]
    assert sorted(statuses) == ["available", "available", "on_call"]


def test_an_agent_on_break_is_not_put_in_wrap_up_by_another_call(db: Database, settings: Settings) -> None:
    agent_id = make_agent(db, FIXED_NOW, user_id=None)
    call_id = answered_call(db, FIXED_NOW, linkedid="1795400000.3", start=FIXED_NOW - timedelta(minutes=5))
    options = {"now": FIXED_NOW, "console": settings.console, "zone": settings.zone}
    with db.transaction() as session:
        presence.set_presence(session, agent_id, "break", **options)  # type: ignore[arg-type]
        assert wrapup.call_ended(session, agent_id, call_id, **options) is None  # type: ignore[arg-type]
        row = session.get(AgentPresence, agent_id)
        assert row is not None and row.status == "break"


def test_unlogged_calls_after_the_window_per_agent(db: Database, settings: Settings) -> None:
    first = make_agent(db, FIXED_NOW, user_id=None, extension="1001", name="甲")
    make_agent(db, FIXED_NOW, user_id=None, extension="1002", name="乙")
    old = answered_call(
        db, FIXED_NOW, linkedid="1.1", start=FIXED_NOW - timedelta(minutes=20)
    )  # ended 18.5 min ago
    answered_call(db, FIXED_NOW, linkedid="1.2", start=FIXED_NOW - timedelta(minutes=5))  # inside the window
    other = answered_call(
        db, FIXED_NOW, linkedid="1.3", start=FIXED_NOW - timedelta(hours=1), extension="1002"
    )
    done = answered_call(db, FIXED_NOW, linkedid="1.4", start=FIXED_NOW - timedelta(hours=2))
    _wrap(db, settings, done, first)
    with db.read() as session:
        mine = wrapup.unlogged_calls(session, now=FIXED_NOW, window_min=10, agent_id=first)
        everyone = wrapup.unlogged_calls(session, now=FIXED_NOW, window_min=10)
    assert [row.call_id for row in mine] == [old]
    assert {row.call_id for row in everyone} == {old, other}
    assert {row.agent_name for row in everyone} == {"甲", "乙"}


def test_routing_keys_match_the_agent_by_interface_identity_or_id() -> None:
    agent = AgentView(7, "李娜", "1001", "lina")
    keys = screenpop.agent_keys(agent)
    for payload in (
        {"agent": "PJSIP/1001"},
        {"interface": "Local/1001@agents/n"},
        {"agent": 7},
        {"agent": 3, "agent_interface": "client:lina"},
    ):
        assert screenpop.routing_keys(payload) & keys, payload
    assert not screenpop.routing_keys({"agent": "PJSIP/1002"}) & keys
    demo = screenpop.agent_keys(AgentView(8, "张伟", "PJSIP/1001", None))  # the demo seed's form
    assert screenpop.routing_keys({"interface": "Local/1001@agents/n"}) & demo
    assert screenpop.routing_keys({"agent": "PJSIP/1001"}) & demo
    assert not screenpop.routing_keys({"agent": True}) & keys


def test_card_of_a_frequent_known_caller(db: Database, settings: Settings) -> None:
    make_agent(db, FIXED_NOW, user_id=None)
    for days in (2, 3, 5, 20, 30, 40):
        answered_call(db, FIXED_NOW, linkedid=f"9.{days}", start=FIXED_NOW - timedelta(days=days))
    current = answered_call(
        db, FIXED_NOW, linkedid="9.0", start=FIXED_NOW - timedelta(seconds=40), ended=False
    )
    with db.transaction() as session:
        caller = session.get(Call, current).caller  # type: ignore[union-attr]
        assert caller is not None
        caller.name, caller.tier = "张三 <b>", "vip"
        caller_id = caller.id
    open_case(db, FIXED_NOW, caller_id=caller_id, number="TS-20261122-0001")
    open_case(db, FIXED_NOW, caller_id=caller_id, number="TS-20261101-0002", status="closed")
    agent = AgentView(1, "李娜", "1001", None)
    with db.read() as session:
        card = screenpop.card(
            session, settings, agent, {"call_id": current, "state": "ringing", "event_id": "e1"}, FIXED_NOW
        )
    caller_card = card["caller"]
    assert (
        caller_card["name"] == "张三 <b>" and caller_card["vip"] and caller_card["number"] == "+8613800138000"
    )
    assert caller_card["region"] == "北京市"  # phonenumbers' geocoder, in Chinese
    assert caller_card["calls_in_window"] == 4 and caller_card["frequent"] and card["history_first"]
    assert len(card["last_calls"]) == 5
    started = [row["started_at"] for row in card["last_calls"]]
    assert started == sorted(started, reverse=True)  # newest first; the 40-day-old call is not among them
    assert current not in [row["id"] for row in card["last_calls"]]
    assert [case["number"] for case in card["open_cases"]] == ["TS-20261122-0001"]
    assert card["call"]["queue"] == "consultation" and card["call"]["wait_s"] == 19
    assert card["call"]["ivr_path"][:2] == ["welcome", "main_menu"]
    assert card["script"]["zh"] == "您好,这里是星河电器客户服务中心,我是李娜。请问有什么可以帮您?"
    assert "李娜" in card["script"]["en"]
    assert card["case_url"] == f"/cases/new?call_id={current}"


def test_card_of_an_unknown_call_uses_the_event(db: Database, settings: Settings) -> None:
    agent = AgentView(1, "李娜", "1001", None)
    payload = {
        "linkedid": "no.such",
        "caller": "02188886666",
        "caller_name": "<script>x</script>",
        "queue": "complaint",
    }
    with db.read() as session:
        card = screenpop.card(session, settings, agent, payload, FIXED_NOW)
    assert card["call"]["id"] is None and card["case_url"] is None
    assert card["caller"]["name"] == "<script>x</script>" and card["caller"]["number"] == "+862188886666"
    assert card["caller"]["region"] == "上海市" and not card["caller"]["frequent"]
    assert card["call"]["queue"] == "complaint"
    with db.read() as session:
        assert session.query(Caller).count() == 0  # reading a card creates nothing
