"""The screen-pop stream over real HTTP: routing to the one agent, the outbox from another process,
Last-Event-ID replay, heartbeats, the end of a stream, and who may open one."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
import requests

from callcenter.db import Database
from callcenter.events import SCREEN_POP, Event, OutboxBus
from callcenter.models import AgentPresence
from callcenter.services.calls import CallSeen, Entry, record_call
from callcenter.voice.ami.ringing import Ring, ring_agent
from tests.conftest import FIXED_NOW
from tests.console.conftest import Live, SseClient, signed_in
from tests.console.factories import agent_account, answered_call
from tests.web.factories import ivr_entries, make_account


def _open(live: Live, username: str, extension: str, **options: Any) -> SseClient:
    account, _agent_id = agent_account(
        live.app.extensions["callcenter"].db, FIXED_NOW, username, extension=extension
    )
    cookie = signed_in(live.url, account).cookies["callcenter_session"]
    return _track(live, SseClient(live.url, cookie, **options))


def _track(live: Live, client: SseClient) -> SseClient:
    live.clients.append(client)  # closed at teardown, pass or fail
    return client


def _pop(**payload: Any) -> Event:
    return Event(SCREEN_POP, {"state": "ringing", "queue": "consultation", **payload})


def test_a_pop_reaches_the_ringing_agent_only_and_fast(live: Live, db: Database) -> None:
    first = _open(live, "lina", "1001")
    second = _open(live, "wangfang", "1002")
    assert first.status == 200 and first.headers["content-type"].startswith("text/event-stream")
    assert first.headers["x-accel-buffering"] == "no" and first.headers["cache-control"] == "no-store"
    live.wait_streams(2)
    call_id = answered_call(
        db, FIXED_NOW, linkedid="1795.1", start=FIXED_NOW - timedelta(minutes=1), ended=False
    )
    started = time.perf_counter()
    live.bus.publish(
        _pop(agent="PJSIP/1001", interface="PJSIP/1001", call_id=call_id, linkedid="1795.1", event_id="ev-1")
    )
    event = first.next_event()
    elapsed = time.perf_counter() - started
    assert event["id"] == "ev-1" and event["event"] == "screenpop"
    card = json.loads(event["data"])
    assert card["call"]["id"] == call_id and card["caller"]["name"] == "张三"
    assert card["caller"]["region"] == "北京市" and card["case_url"] == f"/cases/new?call_id={call_id}"
    assert elapsed < 1.0
    quiet_until = time.monotonic() + 0.5
    while time.monotonic() < quiet_until:  # the other agent hears heartbeats only
        assert all(line.startswith((":", "retry")) for line in second.next_block(timeout=2))
    first.close()
    second.close()
    live.wait_streams(0)


def test_another_process_pops_through_the_outbox_and_the_stream_changes_no_presence(
    live: Live, db: Database
) -> None:
    client = _open(live, "lina", "1001")
    live.wait_streams(1)
    assert live.runtime.wait_ready(5)
    ring = Ring("1795.7", "1001", "consultation", "13900139000", "<script>alert(1)</script>")
    call_id = ring_agent(
        ring,
        db,
        OutboxBus(db, lambda: FIXED_NOW),
        lambda: FIXED_NOW,
        region="CN",
        monitor_dir="/m",
        answer_after_s=0,
    )
    ringing, connected = json.loads(client.next_event()["data"]), json.loads(client.next_event()["data"])
    assert (ringing["state"], connected["state"]) == ("ringing", "connected")
    assert connected["call"]["id"] == call_id and connected["caller"]["name"] == "<script>alert(1)</script>"
    with db.read() as session:  # the card was shown; presence follows the call in the voice layer
        row = session.query(AgentPresence).one()
        assert (row.status, row.call_id) == ("available", None)
    client.close()


def test_a_reconnecting_tab_gets_what_it_missed(live: Live) -> None:
    client = _open(live, "lina", "1001")
    live.wait_streams(1)
    live.bus.publish(_pop(agent="PJSIP/1001", caller="13800138000", event_id="a"))
    assert client.next_event()["id"] == "a"
    cookie = client.cookie
    client.close()
    live.wait_streams(0)
    live.bus.publish(_pop(agent="PJSIP/1001", caller="13800138001", event_id="b"))
    live.bus.publish(_pop(agent="PJSIP/1002", caller="13800138002", event_id="not-mine"))
    again = _track(live, SseClient(live.url, cookie, last_event_id="a"))
    assert again.next_event()["id"] == "b"
    again.close()
    fresh = _track(live, SseClient(live.url, cookie))  # no Last-Event-ID: nothing old is replayed
    live.wait_streams(1)
    live.bus.publish(_pop(agent="PJSIP/1001", caller="13800138003", event_id="c"))
    assert fresh.next_event()["id"] == "c"
    fresh.close()


@pytest.mark.parametrize("console_options", [{"heartbeat_s": 0.1, "stream_max_s": 10}])
def test_heartbeats_keep_an_idle_stream_alive(live: Live) -> None:
    client = _open(live, "lina", "1001")
    assert client.next_block() == ["retry: 2000", ": connected"]
    assert client.next_block(timeout=2) == [": keep-alive"]
    client.close()


@pytest.mark.parametrize("console_options", [{"stream_max_s": 1}])
def test_a_stream_ends_after_its_time_and_the_browser_is_told_when_to_retry(live: Live) -> None:
    client = _open(live, "lina", "1001")
    started = time.monotonic()
    assert client.next_block()[0] == "retry: 2000"
    while client.next_block(timeout=5):
        pass
    assert 0.9 < time.monotonic() - started < 4
    live.wait_streams(0)


def test_who_may_open_a_stream(live: Live, db: Database) -> None:
    anonymous = requests.get(f"{live.url}/console/events", allow_redirects=False, timeout=5)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    qa = signed_in(live.url, make_account(db, FIXED_NOW, "qa1", ("qa",)))
    assert qa.get(f"{live.url}/console/events", timeout=5).status_code == 403
    no_agent = signed_in(live.url, make_account(db, FIXED_NOW, "agent9", ("agent_consultation",)))
    assert no_agent.get(f"{live.url}/console/events", timeout=5).status_code == 404


@pytest.mark.parametrize("console_options", [{"max_streams": 1}])
def test_a_full_process_refuses_more_streams(live: Live) -> None:
    client = _open(live, "lina", "1001")
    live.wait_streams(1)
    second = _track(live, SseClient(live.url, client.cookie))
    assert second.status == 503 and second.headers["retry-after"] == "5"
    second.close()
    client.close()


def test_a_card_popped_before_the_ivr_report_is_sent_again_when_it_lands(live: Live, db: Database) -> None:
    """The AMI listener can ring the agent before the FastAGI script's report is written (another
    writer, another process, the spool): the card then lacks the IVR branch and path, and the
    stream sends it again once they are on record."""
    client = _open(live, "lina", "1001")
    live.wait_streams(1)
    start = FIXED_NOW - timedelta(seconds=40)
    seen = CallSeen(channel="asterisk", external_id="1796.9", at=start, direction="")
    ringing = Entry(
        "ami:AgentCalled:1796.10:1", "agent.ringing", start + timedelta(seconds=30), "ami", seq=20,
        data={"queue": "consultation", "interface": "PJSIP/1001", "channel": "Local/100@in-1;2"},
    )  # fmt: skip
    with db.transaction() as session:
        call_id = record_call(session, seen, [ringing], region="CN", now=FIXED_NOW).id
    live.bus.publish(_pop(agent="PJSIP/1001", call_id=call_id, linkedid="1796.9", event_id="ev-9"))
    first = json.loads(client.next_event()["data"])
    assert first["call"]["ivr_branch"] is None and first["call"]["ivr_path"] == []
    report = CallSeen(channel="asterisk", external_id="1796.9", at=start, from_raw="13800138000")
    with db.transaction() as session:
        record_call(session, report, ivr_entries("1796.10", start, "complaint"), region="CN", now=FIXED_NOW)
    again = client.next_event(timeout=5)
    card = json.loads(again["data"])
    assert again["id"] == "ev-9" and card["call"]["id"] == call_id
    assert card["call"]["ivr_branch"] == "complaint"
    assert card["call"]["ivr_path"] == ["welcome", "main_menu", "route_complaint"]
    client.close()
