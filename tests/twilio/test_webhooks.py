"""The webhooks through the Flask test client: signatures, the IVR, the queue, agents, callbacks."""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import make_server

from callcenter.db import Database
from callcenter.events import SCREEN_POP, Event, LocalBus
from callcenter.ivr import engine
from callcenter.models import AgentPresence, Call, CallbackTask, CallEvent, PresenceLog, Recording
from callcenter.services import journal
from callcenter.services.callbacks import tasks_for_call
from callcenter.voice.twilio.hotline import DEQUEUE_WAIT_S, encode_token
from tests.twilio.conftest import (
    ACCOUNT,
    CALLER,
    PUBLIC,
    VIP,
    Clock,
    SignedClient,
    call_params,
    make_agent,
    make_vip,
    sign,
    twilio_settings_for,
)
from tests.web.factories import web_settings_for
from web import create_app
from web.twilio import EXTENSION_KEY as TWILIO_EXTENSION

SID = "CA" + "1" * 32
AGENT_LEG = "CA" + "a" * 32
HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
SAY = '<Say language="zh-CN" voice="Polly.Zhiyu">'
NIGHT = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def url_of(xml: str, attribute: str = "action") -> str:
    match = re.search(rf'{attribute}="([^"]+)"', xml)
    assert match, f"no {attribute} in {xml}"
    return match.group(1).replace("&amp;", "&")


def the_call(db: Database, sid: str = SID) -> Call:
    with db.read() as session:
        call = session.execute(select(Call).where(Call.external_id == sid)).scalar_one()
        session.expunge(call)
        return call


def event_count(db: Database) -> int:
    with db.read() as session:
        return int(session.execute(select(func.count()).select_from(CallEvent)).scalar_one())


# --- signatures --------------------------------------------------------------------------------------


def test_a_signed_incoming_call_gets_the_welcome_and_the_menu(twilio: SignedClient, db: Database) -> None:
    response = twilio.post("/twilio/voice", call_params())
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    state = {
        "enqueued_at": None,
        "finished": False,
        "flow": "hotline",
        "invalid": 0,
        "language": "zh",
        "no_input": 0,
        "node": "main_menu",
        "path": ["welcome", "hours", "main_menu"],
        "seq": 4,
        "version": 2,
        "vip": False,
    }
    token = encode_token({"k": "", "s": state})
    assert response.get_data(as_text=True) == (
        f'{HEAD}<Response><Gather action="{PUBLIC}/twilio/gather/main_menu?s={token}" '
        'actionOnEmptyResult="true" input="dtmf" numDigits="1" timeout="6">'
        f"{SAY}您好,欢迎致电客户服务热线。本次通话可能会被录音,以便我们提高服务质量。</Say>"
        f"{SAY}业务咨询请按1,投诉建议请按2,人工服务请按0,重听请按9。For English, press 8.</Say>"
        "</Gather></Response>"
    )
    call = the_call(db)
    assert (call.channel, call.from_e164, call.ivr_path, call.disposition) == (
        "twilio",
        CALLER,
        ["welcome", "hours", "main_menu"],
        "in_ivr",
    )


@pytest.mark.parametrize(
    "signature",
    [
        "",  # missing
        "forged",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ],
)
def test_a_missing_or_forged_signature_is_refused_and_logged(
    twilio: SignedClient, db: Database, signature: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="web.twilio"):
        response = twilio.post("/twilio/voice", call_params(), signature=signature)
    assert response.status_code == 403
    assert "signature on POST /twilio/voice" in caplog.text
    assert event_count(db) == 0


def test_a_signature_of_other_parameters_or_another_url_is_refused(
    twilio: SignedClient, db: Database
) -> None:
    params = call_params()
    other = sign(PUBLIC + "/twilio/voice", {**params, "From": "+8613700137000"})
    assert twilio.post("/twilio/voice", params, signature=other).status_code == 403
    # signed for the address the request reached (the proxy's inside), not the public one
    inside = sign("http://localhost/twilio/voice", params)
    assert twilio.post("/twilio/voice", params, signature=inside).status_code == 403
    assert (
        twilio.post("/twilio/status", params, signature=sign(PUBLIC + "/twilio/voice", params)).status_code
        == 403
    )
    assert event_count(db) == 0


def test_a_changed_state_token_breaks_the_signature(twilio: SignedClient) -> None:
    menu = twilio.post("/twilio/voice", call_params()).get_data(as_text=True)
    action = url_of(menu)
    params = call_params(Digits="2")
    signature = sign(action, params)
    tampered = action.replace("main_menu?s=", "main_menu?s=x")
    response = twilio.client.post(
        tampered.removeprefix(PUBLIC), data=params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403


def test_a_replayed_webhook_answers_the_same_and_adds_nothing(twilio: SignedClient, db: Database) -> None:
    action = url_of(twilio.post("/twilio/voice", call_params()).get_data(as_text=True))
    first = twilio.post(action, call_params(Digits="1"))
    count = event_count(db)
    again = twilio.post(action, call_params(Digits="1"))
    assert again.status_code == 200
    assert again.get_data() == first.get_data()
    assert event_count(db) == count
    assert twilio.post("/twilio/voice", call_params()).status_code == 200
    assert event_count(db) == count
    assert the_call(db).queue_name == "consultation"


def test_webhooks_need_no_login_and_no_csrf_token_but_pages_still_do(twilio: SignedClient) -> None:
    answer = twilio.post("/twilio/voice?lang=en", call_params())
    assert answer.status_code == 200
    assert "Set-Cookie" not in answer.headers  # no session for webhooks, even asked to switch language
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert twilio.client.get("/calls").status_code == 302
    assert twilio.client.post("/logout").status_code in (302, 400)


def test_the_webhooks_are_an_application_of_their_own_in_front_of_the_staff_pages(
    app: Flask, twilio: SignedClient
) -> None:
    # No rule of the staff application serves /twilio/: its login guard, CSRF check, session and page
    # headers never see a webhook, and a webhook cannot be reached through a staff route.
    assert not [rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/twilio")]
    answer = twilio.post("/twilio/voice", call_params())
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Content-Security-Policy" not in answer.headers  # a page header: Twilio reads no page
    assert twilio.post("/twilio/nothing-here", call_params()).status_code == 404


def test_without_twilio_settings_the_webhooks_are_not_served(tmp_path: Path, db: Database) -> None:
    app = create_app(web_settings_for(tmp_path, db.url), db)
    response = app.test_client().post("/twilio/voice", data=call_params())
    assert response.status_code == 302  # to the login page: no such public endpoint


def test_a_webhook_reached_through_a_live_server(tmp_path: Path, db: Database, clock: Clock) -> None:
    app = create_app(twilio_settings_for(tmp_path, db.url), db, clock=clock)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        params = call_params()
        signature = sign(PUBLIC + "/twilio/voice", params)  # Twilio signs what it requested: the public URL
        ok = requests.post(
            f"{base}/twilio/voice", data=params, headers={"X-Twilio-Signature": signature}, timeout=10
        )
        assert ok.status_code == 200
        assert ok.headers["Content-Type"].startswith("text/xml")
        action = url_of(ok.text)
        digits = call_params(Digits="2")
        routed = requests.post(
            base + action.removeprefix(PUBLIC),
            data=digits,
            headers={"X-Twilio-Signature": sign(action, digits)},
            timeout=10,
        )
        assert "<Enqueue" in routed.text
        forged = requests.post(
            f"{base}/twilio/voice", data=params, headers={"X-Twilio-Signature": "x"}, timeout=10
        )
        assert forged.status_code == 403
        replayed = requests.post(
            f"{base}/twilio/voice", data=params, headers={"X-Twilio-Signature": signature}, timeout=10
        )
        assert replayed.status_code == 200
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
    # The answers went out before their reports were written: wait for the writer before reading.
    assert app.extensions[TWILIO_EXTENSION].voice.recorder.flush()
    call = the_call(db)
    assert (call.queue_name, call.ivr_branch, call.disposition) == ("complaint", "complaint", "queued")


# --- a whole call --------------------------------------------------------------------------------------

Request = tuple[float, str, dict[str, str]]  # (seconds after the start, URL, form)


def lifecycle(twilio: SignedClient, clock: Clock, db: Database, agent_id: int) -> list[Request]:
    """Play one answered call in order; returns every request made (time, URL, form) for replays."""
    start = clock.now
    made: list[Request] = []

    def post(at: float, url: str, params: Mapping[str, str], status: int = 200) -> str:
        clock.now = start + timedelta(seconds=at)
        full = url if url.startswith("http") else PUBLIC + url
        response = twilio.post(full, params)
        assert response.status_code == status, response.get_data(as_text=True)
        made.append((at, full, dict(params)))
        return response.get_data(as_text=True)

    post(0, "/twilio/status", call_params(CallStatus="ringing"), 204)
    menu = post(0.5, "/twilio/voice", call_params())
    routed = post(8, url_of(menu), call_params(Digits="2", CallStatus="in-progress"))
    post(9, url_of(routed, "waitUrl"), call_params(QueuePosition="1", QueueTime="0"))
    dial = post(30, "/twilio/agent", {**call_params(AGENT_LEG, caller="client:wangfang"), "To": ""})
    assert "<Queue" in dial
    dequeued = url_of(dial, "url")
    post(31, dequeued, call_params(DequeingCallSid=AGENT_LEG, QueueTime="22", QueueSid="QU1"))
    recording = {
        "AccountSid": ACCOUNT,
        "CallSid": AGENT_LEG,
        "RecordingSid": "RE" + "1" * 32,
        "RecordingStatus": "completed",
        "RecordingDuration": "120",
        "RecordingChannels": "2",
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{'1' * 32}",
    }
    post(152, url_of(dial, "recordingStatusCallback"), recording, 204)
    post(151, url_of(routed), call_params(QueueResult="bridged", QueueTime="22"))
    post(153, "/twilio/status", call_params(CallStatus="completed", CallDuration="153"), 204)
    return made


SUMMARY = (
    "disposition",
    "queue_name",
    "ivr_branch",
    "ivr_path",
    "answered_at",
    "ended_at",
    "wait_s",
    "talk_s",
    "agent_id",
    "priority",
    "end_reason",
    "agent_interface",
)


def summary(db: Database) -> dict[str, Any]:
    call = the_call(db)
    with db.read() as session:
        keys = set(session.execute(select(CallEvent.key).where(CallEvent.call_id == call.id)).scalars())
        recordings = set(
            session.execute(select(Recording.source, Recording.external_id, Recording.kind)).tuples()
        )
    return {**{name: getattr(call, name) for name in SUMMARY}, "keys": keys, "recordings": recordings}


def test_a_whole_call_in_order(twilio: SignedClient, clock: Clock, db: Database, bus: LocalBus) -> None:
    agent_id = make_agent(db, clock.now, "wangfang", ("complaint", "consultation"))
    pops: list[Event] = []
    bus.subscribe(SCREEN_POP, pops.append)
    lifecycle(twilio, clock, db, agent_id)
    result = summary(db)
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert {name: result[name] for name in SUMMARY} == {
        "disposition": "answered",
        "queue_name": "complaint",
        "ivr_branch": "complaint",
        "ivr_path": ["welcome", "hours", "main_menu", "route_complaint"],
        "answered_at": start + timedelta(seconds=31),
        "ended_at": start + timedelta(seconds=153),
        "wait_s": 22,
        "talk_s": 120,
        "agent_id": agent_id,
        "priority": 0,
        "end_reason": None,
        "agent_interface": "client:wangfang",
    }
    assert result["recordings"] == {("twilio", "RE" + "1" * 32, "call")}
    assert [event.payload["agent"] for event in pops] == [agent_id]
    assert pops[0].payload["call_sid"] == SID
    assert pops[0].payload["call_id"] == the_call(db).id
    assert pops[0].payload["queue"] == "complaint"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_same_call_with_callbacks_duplicated_and_shuffled_gives_the_same_record(
    twilio: SignedClient, clock: Clock, db: Database, seed: int
) -> None:
    agent_id = make_agent(db, clock.now, "wangfang", ("complaint",))
    made = lifecycle(twilio, clock, db, agent_id)
    expected = summary(db)
    with db.transaction() as session:  # start over, keep the agent
        session.execute(CallEvent.__table__.delete())
        session.execute(Recording.__table__.delete())
        session.execute(Call.__table__.delete())
    # Twilio runs the call's own requests in order; its callbacks (status, recording) may come
    # late, twice and in any order; a late ``ringing`` can come at any time.
    in_call = [request for request in made if "/status" not in request[1] and "/recording" not in request[1]]
    callbacks = [request for request in made if request not in in_call] * 2
    rng = random.Random(seed)
    rng.shuffle(callbacks)
    ringing = [
        request for request in made if request[2].get("CallStatus") == "ringing" and "/status" in request[1]
    ]
    order = in_call[:]
    for early in ringing:
        order.insert(rng.randrange(len(order) + 1), early)
    order += callbacks
    for at, url, params in order:
        clock.now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC) + timedelta(seconds=at)
        assert twilio.post(url, params).status_code in (200, 204)
    assert summary(db) == expected


def test_a_ringing_status_after_completed_changes_nothing(
    twilio: SignedClient, clock: Clock, db: Database
) -> None:
    menu = twilio.post("/twilio/voice", call_params()).get_data(as_text=True)
    twilio.post(url_of(menu), call_params(Digits="1"))
    clock.advance(60)
    twilio.post("/twilio/status", call_params(CallStatus="completed", CallDuration="60"))
    before = summary(db)
    clock.advance(5)
    for status in ("ringing", "in-progress", "completed", "queued"):
        assert twilio.post("/twilio/status", call_params(CallStatus=status)).status_code == 204
    after = summary(db)
    assert {key: value for key, value in after.items() if key != "keys"} == {
        key: value for key, value in before.items() if key != "keys"
    }
    assert after["ended_at"] == FIXED + timedelta(seconds=60)
    assert not [key for key in after["keys"] - before["keys"] if "completed" in key or "hangup" in key]


FIXED = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_a_caller_hanging_up_at_the_menu_is_abandoned_in_the_ivr(
    twilio: SignedClient, clock: Clock, db: Database
) -> None:
    twilio.post("/twilio/voice", call_params())
    clock.advance(4)
    twilio.post("/twilio/status", call_params(CallStatus="completed", CallDuration="4"))
    twilio.post("/twilio/status", call_params(CallStatus="completed", CallDuration="4"))
    call = the_call(db)
    assert (call.disposition, call.last_node, call.end_reason) == (
        "abandoned_in_ivr",
        "main_menu",
        "caller hung up",
    )
    assert call.ended_at == FIXED + timedelta(seconds=4)


def test_no_input_three_times_goes_to_the_default_queue(twilio: SignedClient, db: Database) -> None:
    xml = twilio.post("/twilio/voice", call_params()).get_data(as_text=True)
    for _ in range(3):
        xml = twilio.post(url_of(xml), call_params(Digits="")).get_data(as_text=True)
    assert ">consultation</Enqueue>" in xml
    call = the_call(db)
    assert (call.ivr_branch, call.queue_name) == ("timeout", "consultation")


def test_a_caller_hanging_up_in_the_queue_is_abandoned_in_the_queue(
    twilio: SignedClient, clock: Clock, db: Database
) -> None:
    menu = twilio.post("/twilio/voice", call_params()).get_data(as_text=True)
    routed = twilio.post(url_of(menu), call_params(Digits="1")).get_data(as_text=True)
    clock.advance(45)
    response = twilio.post(url_of(routed), call_params(QueueResult="hangup", QueueTime="40"))
    assert response.get_data(as_text=True) == f"{HEAD}<Response />"
    call = the_call(db)
    assert (call.disposition, call.wait_s) == ("abandoned_in_queue", 40)


def test_a_dequeue_with_the_database_stuck_answers_in_time_and_the_report_still_lands(
    twilio: SignedClient, clock: Clock, db: Database, bus: LocalBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent_id = make_agent(db, clock.now, "wangfang", ("consultation",))
    menu = twilio.post("/twilio/voice", call_params()).get_data(as_text=True)
    twilio.post(url_of(menu), call_params(Digits="1"))
    pops: list[Event] = []
    bus.subscribe(SCREEN_POP, pops.append)
    stuck, written = threading.Event(), journal.record_calls

    def record_calls_when_unstuck(*args: Any, **kwargs: Any) -> list[int]:
        stuck.wait(30)
        return written(*args, **kwargs)

    monkeypatch.setattr(journal, "record_calls", record_calls_when_unstuck)
    url = f"{PUBLIC}/twilio/dequeued?agent={agent_id}&q=consultation"
    params = call_params(DequeingCallSid=AGENT_LEG, QueueTime="12")
    try:
        began = time.monotonic()
        answer = twilio.client.post(
            url.removeprefix(PUBLIC), data=params, headers={"X-Twilio-Signature": sign(url, params)}
        )
        took = time.monotonic() - began
    finally:
        stuck.set()
    assert answer.status_code == 200
    assert DEQUEUE_WAIT_S <= took < DEQUEUE_WAIT_S + 1.5  # well inside Twilio's 15 s
    # without the id the screen-pop names the call by its CallSid (the console finds it by that)
    assert [(pop.payload["call_id"], pop.payload["call_sid"]) for pop in pops] == [(None, SID)]
    recorder = twilio.client.application.extensions[TWILIO_EXTENSION].voice.recorder
    assert recorder.flush()
    call = the_call(db)
    assert (call.disposition, call.agent_id, call.wait_s) == ("answered", agent_id, 12)


def test_a_vip_waits_in_the_vip_queue_and_agents_take_it_first(
    twilio: SignedClient, clock: Clock, db: Database
) -> None:
    make_vip(db, clock.now)
    agent_id = make_agent(db, clock.now, "wangfang", ("complaint",))
    plain = twilio.post("/twilio/voice", call_params()).get_data(as_text=True)
    twilio.post(url_of(plain), call_params(Digits="2"))
    vip_sid = "CA" + "2" * 32
    menu = twilio.post("/twilio/voice", call_params(vip_sid, caller=VIP)).get_data(as_text=True)
    routed = twilio.post(url_of(menu), call_params(vip_sid, caller=VIP, Digits="2")).get_data(as_text=True)
    assert ">complaint.p10</Enqueue>" in routed
    dial = twilio.post("/twilio/agent", call_params(AGENT_LEG, caller="client:wangfang")).get_data(
        as_text=True
    )
    dequeued = f"{PUBLIC}/twilio/dequeued?agent={agent_id}&amp;q=complaint.p10"
    recording = f"{PUBLIC}/twilio/recording?kind=call"
    assert dial == (
        f'{HEAD}<Response><Dial record="record-from-answer-dual" recordingStatusCallback="{recording}" '
        f'recordingStatusCallbackEvent="completed"><Queue method="POST" url="{dequeued}">'
        "complaint.p10</Queue></Dial></Response>"
    )
    twilio.post(
        url_of(dial, "url"), call_params(vip_sid, caller=VIP, DequeingCallSid=AGENT_LEG, QueueTime="5")
    )
    assert the_call(db, vip_sid).priority == 10
    assert the_call(db, vip_sid).disposition == "answered"
    # the VIP is taken: the next agent gets the normal queue
    second = twilio.post("/twilio/agent", call_params("CA" + "b" * 32, caller="client:wangfang"))
    assert ">complaint</Queue>" in second.get_data(as_text=True)


def test_someone_who_is_not_an_agent_gets_a_hangup(twilio: SignedClient) -> None:
    response = twilio.post("/twilio/agent", call_params(AGENT_LEG, caller="client:nobody"))
    assert response.get_data(as_text=True) == f"{HEAD}<Response><Hangup /></Response>"


def test_pressing_1_in_the_queue_books_a_callback_keeping_the_place_in_line(
    twilio: SignedClient, clock: Clock, db: Database
) -> None:
    menu = twilio.post("/twilio/voice", call_params()).get_data(as_text=True)
    routed = twilio.post(url_of(menu), call_params(Digits="2")).get_data(as_text=True)
    joined = clock.now
    wait = url_of(routed, "waitUrl")
    clock.advance(30)
    early = twilio.post(wait, call_params(QueuePosition="3", QueueTime="30")).get_data(as_text=True)
    assert "<Gather" not in early
    clock.advance(40)
    offer = twilio.post(wait, call_params(QueuePosition="2", QueueTime="70")).get_data(as_text=True)
    callback_url = url_of(offer)
    assert twilio.post(callback_url, call_params(Digits="5")).get_data(as_text=True) == (
        f'{HEAD}<Response><Redirect method="POST">{wait.replace("&", "&amp;")}</Redirect></Response>'
    )
    assert twilio.post(callback_url, call_params(Digits="1")).get_data(as_text=True) == (
        f"{HEAD}<Response><Leave /></Response>"
    )
    done = twilio.post(url_of(routed), call_params(QueueResult="leave", QueueTime="70")).get_data(
        as_text=True
    )
    assert done == (
        f'{HEAD}<Response><Say language="zh-CN" voice="Polly.Zhiyu">'
        "好的,我们已为您保留排队顺序,坐席空闲时将按顺序给您回电。再见。</Say><Hangup /></Response>"
    )
    call = the_call(db)
    with db.read() as session:
        tasks = tasks_for_call(session, call.id)
        assert [(task.kind, task.enqueued_at, task.queue_name) for task in tasks] == [
            ("queue_callback", joined, "complaint")  # the queue the caller pressed 2 for
        ]
    assert (call.disposition, call.end_reason) == ("queue_callback", "queue_callback")  # as on Asterisk


def test_a_full_queue_is_a_missed_call_with_the_voicemail_offer(
    twilio: SignedClient, clock: Clock, db: Database
) -> None:
    menu = twilio.post("/twilio/voice", call_params()).get_data(as_text=True)
    routed = twilio.post(url_of(menu), call_params(Digits="1")).get_data(as_text=True)
    offer = twilio.post(url_of(routed), call_params(QueueResult="queue-full")).get_data(as_text=True)
    assert "/twilio/gather/voicemail_menu?" in offer
    with db.read() as session:
        kinds = list(session.execute(select(CallbackTask.kind)).scalars())
    assert kinds == ["missed_call"]
    assert (the_call(db).disposition, the_call(db).end_reason) == ("queue_refused", "queue_refused (FULL)")


def test_after_hours_a_voicemail_is_recorded_and_registered(
    twilio: SignedClient, clock: Clock, db: Database
) -> None:
    clock.now = NIGHT
    offer = twilio.post("/twilio/voice", call_params()).get_data(as_text=True)
    prompt = twilio.post(url_of(offer), call_params(Digits="1")).get_data(as_text=True)
    assert "<Record " in prompt
    recorded = url_of(prompt)
    assert "/twilio/recorded/voicemail?" in recorded
    assert url_of(prompt, "recordingStatusCallback") == f"{PUBLIC}/twilio/recording?kind=voicemail"
    clock.advance(40)
    sid = "RE" + "9" * 32
    thanks = twilio.post(recorded, call_params(RecordingSid=sid, RecordingDuration="31", Digits="#"))
    assert thanks.get_data(as_text=True).endswith("<Hangup /></Response>")
    callback = {
        "CallSid": SID,
        "RecordingSid": sid,
        "RecordingStatus": "completed",
        "RecordingDuration": "31",
    }
    assert twilio.post(f"{PUBLIC}/twilio/recording?kind=voicemail", callback).status_code == 204
    call = the_call(db)
    with db.read() as session:
        rows = list(session.execute(select(Recording.source, Recording.external_id, Recording.kind)).tuples())
        tasks = list(session.execute(select(CallbackTask.kind)).scalars())
    assert rows == [("twilio", sid, "voicemail")]
    assert tasks == ["after_hours"]
    assert (call.disposition, call.end_reason) == ("ended_in_ivr", "voicemail")


def test_nothing_recorded_goes_on_without_a_recording(
    twilio: SignedClient, clock: Clock, db: Database
) -> None:
    clock.now = NIGHT
    offer = twilio.post("/twilio/voice", call_params()).get_data(as_text=True)
    prompt = twilio.post(url_of(offer), call_params(Digits="1")).get_data(as_text=True)
    redirect = re.search(r"<Redirect>([^<]+)</Redirect>", prompt)
    assert redirect
    thanks = twilio.post(redirect.group(1).replace("&amp;", "&"), call_params())
    assert thanks.status_code == 200
    with db.read() as session:
        assert session.execute(select(func.count()).select_from(Recording)).scalar_one() == 0


def test_a_token_for_another_node_is_a_bad_request(twilio: SignedClient) -> None:
    action = url_of(twilio.post("/twilio/voice", call_params()).get_data(as_text=True))
    wrong = action.replace("/gather/main_menu?", "/gather/voicemail_menu?")
    assert twilio.post(wrong, call_params(Digits="1")).status_code == 400


def test_a_failing_webhook_still_sends_the_caller_to_the_default_queue(
    twilio: SignedClient, app: Flask, monkeypatch: pytest.MonkeyPatch, db: Database
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(engine, "start", broken)
    response = twilio.post("/twilio/voice", call_params())
    assert response.status_code == 200
    assert response.get_data(as_text=True) == f"{HEAD}<Response><Enqueue>consultation</Enqueue></Response>"


def test_an_outbound_callback_runs_the_outbound_flow(
    twilio: SignedClient, clock: Clock, db: Database
) -> None:
    task_id = callback_task(db, clock.now)
    params = call_params(caller="+864008123123", Direction="outbound-api", To=CALLER)
    xml = twilio.post(f"/twilio/outbound/{task_id}", params).get_data(as_text=True)
    assert "/twilio/gather/callback_menu?" in xml
    assert "就您之前的来电给您回电" in xml
    routed = twilio.post(url_of(xml), {**params, "Digits": "1"}).get_data(as_text=True)
    assert ">consultation</Enqueue>" in routed
    call = the_call(db)
    assert (call.direction, call.to_e164, call.ivr_branch) == ("outbound", CALLER, "callback")


def test_an_answering_machine_is_hung_up_on(twilio: SignedClient, clock: Clock, db: Database) -> None:
    task_id = callback_task(db, clock.now)
    params = call_params(
        caller="+864008123123", Direction="outbound-api", To=CALLER, AnsweredBy="machine_start"
    )
    xml = twilio.post(f"/twilio/outbound/{task_id}", params).get_data(as_text=True)
    assert xml == f"{HEAD}<Response><Hangup /></Response>"
    assert the_call(db).end_reason == "answering_machine"
    assert twilio.post("/twilio/outbound/99999", params).status_code == 400


def callback_task(db: Database, now: datetime) -> int:
    with db.transaction() as session:
        task = CallbackTask(
            key=f"test:{now.isoformat()}",
            kind="missed_call",
            status="dialling",
            number_raw=CALLER,
            number_e164=CALLER,
            language="zh",
            priority=0,
            due_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(task)
        session.flush()
        return task.id


def test_the_dequeue_puts_the_agent_on_the_call_and_its_end_in_wrap_up(
    twilio: SignedClient, clock: Clock, db: Database
) -> None:
    """No console involved: the webhooks move the agent's presence (Twilio has no queue pause)."""
    agent_id = make_agent(db, clock.now, "wangfang", ("complaint", "consultation"))
    made = lifecycle(twilio, clock, db, agent_id)
    voice = twilio.client.application.extensions[TWILIO_EXTENSION].voice
    assert voice.presence_jobs.drain()
    call = the_call(db)
    with db.read() as session:
        log = session.execute(
            select(PresenceLog.status, PresenceLog.call_id, PresenceLog.at).order_by(PresenceLog.id)
        ).all()
        row = session.get(AgentPresence, agent_id)
        assert row is not None and (row.status, row.call_id) == ("wrap_up", call.id)
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert [tuple(entry) for entry in log] == [
        ("on_call", call.id, start + timedelta(seconds=31)),  # the dequeue
        ("wrap_up", call.id, start + timedelta(seconds=153)),  # the caller's call completed
    ]
    for _, url, form in made:  # every webhook again: nothing changes
        twilio.post(url, form)
    assert voice.presence_jobs.drain()
    with db.read() as session:
        assert session.execute(select(func.count()).select_from(PresenceLog)).scalar() == 2
