"""The whole hotline over FastAGI: hours and holidays, after-hours callback and voicemail, operator,
language, queue callbacks keeping the caller's place, outbound calls, and hang-ups in every node."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import Call, CallbackTask, Caller, Recording
from callcenter.voice.agi.simulate import CallScript, Simulation, simulate_call

from .conftest import Server

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = datetime(2026, 11, 23, 23, 30, tzinfo=SHANGHAI)  # a Monday, after 22:00
DAY = datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)


def place(server_at: Server, when: datetime, *inputs: str, **options: object) -> Simulation:
    sections = options.pop("settings", {})
    with server_at(when, **sections) as server:  # type: ignore[arg-type]
        script = CallScript(inputs=inputs, **options)  # type: ignore[arg-type]
        return simulate_call("127.0.0.1", server.port, script, timeout_s=10)


def the_call(db: Database, linkedid: str) -> Call:
    with db.sessions() as session:
        call = session.execute(select(Call).where(Call.external_id == linkedid)).scalar_one()
        session.expunge(call)
        return call


def tasks(db: Database) -> list[CallbackTask]:
    with db.sessions() as session:
        found = list(session.execute(select(CallbackTask).order_by(CallbackTask.id)).scalars())
        session.expunge_all()
        return found


def recordings(db: Database) -> list[Recording]:
    with db.sessions() as session:
        found = list(session.execute(select(Recording)).scalars())
        session.expunge_all()
        return found


def test_after_hours_promises_a_callback_at_the_next_opening_and_takes_voicemail(
    server_at: Server, db: Database
) -> None:
    result = place(server_at, NIGHT, "1", "#", caller_number="+8615000150000")
    assert result.prompts[:3] == [
        "callcenter/hotline/zh/welcome",
        "callcenter/hotline/zh/closed",
        "callcenter/hotline/zh/voicemail_offer",
    ]
    assert result.recordings == [f"/var/spool/asterisk/monitor/voicemail/vm-{result.uniqueid}.wav"]
    record_file = next(c for c in result.commands if c.startswith("RECORD FILE"))
    assert record_file.endswith('wav "#" 120000 BEEP s=5')
    assert result.hung_up and "CC_QUEUE" not in result.variables
    assert result.variables["CC_NEXT"] == "hangup"  # the dialplan must not queue this caller
    call = the_call(db, result.linkedid)
    assert (call.disposition, call.end_reason) == ("ended_in_ivr", "voicemail")
    [task] = tasks(db)
    assert (task.kind, task.status, task.number_e164, task.call_id) == (
        "after_hours",
        "pending",
        "+8615000150000",
        call.id,
    )
    assert task.due_at == datetime(2026, 11, 24, 6, 0, tzinfo=SHANGHAI)
    [voicemail] = recordings(db)
    assert (voicemail.kind, voicemail.uri, voicemail.call_id) == (
        "voicemail",
        f"voicemail/vm-{result.uniqueid}.wav",
        call.id,
    )


def test_after_hours_without_voicemail_still_gets_the_callback(server_at: Server, db: Database) -> None:
    result = place(server_at, NIGHT, "timeout")
    assert result.prompts[-1] == "callcenter/hotline/zh/goodbye" and result.recordings == []
    assert the_call(db, result.linkedid).end_reason == "callback_promised"
    assert [task.kind for task in tasks(db)] == ["after_hours"]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 10, 2, 10, 0, tzinfo=SHANGHAI), "closed"),  # National Day holiday
        (datetime(2026, 10, 10, 10, 0, tzinfo=SHANGHAI), "main_menu"),  # make-up working Saturday (调休)
        (datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI), "closed"),  # an ordinary Saturday
    ],
)
def test_holidays_and_make_up_working_days(server_at: Server, when: datetime, expected: str) -> None:
    closed_on_days_off = {"holidays": {"closed": True}, "rest_days": {"closed": True}}
    result = place(server_at, when, "timeout", settings={"hours": closed_on_days_off})
    assert result.prompts[1] == f"callcenter/hotline/zh/{expected}"


def test_operator_key_goes_to_the_operator_queue(server_at: Server, db: Database) -> None:
    result = place(server_at, DAY, "0", settings={"ivr": {"operator_queue": "complaint"}})
    assert (result.queue, result.variables["CC_BRANCH"]) == ("complaint", "operator")
    assert the_call(db, result.linkedid).ivr_branch == "operator"


def test_english_is_one_key_away_and_follows_the_caller_into_the_queue(server_at: Server) -> None:
    result = place(server_at, DAY, "8", "1")
    assert result.prompts[1:] == [
        "callcenter/hotline/zh/main_menu",
        "callcenter/hotline/en/main_menu",
        "callcenter/hotline/en/to_consultation",
    ]
    assert result.variables["CC_LANGUAGE"] == "en" and result.queue == "consultation"


def test_queue_variables_for_the_dialplan(server_at: Server) -> None:
    result = place(server_at, DAY, "2", settings={"ivr": {"queue_timeout_s": 300}})
    assert result.variables["CC_NEXT"] == "queue"
    assert result.variables["CC_QUEUE_TIMEOUT"] == "300"
    assert float(result.variables["CC_ENQUEUED_AT"]) == DAY.timestamp()
    assert result.variables["CC_CALL_ID"] == result.linkedid


def test_vip_caller_gets_priority_on_every_branch(server_at: Server) -> None:
    result = place(server_at, DAY, "0", caller_number="+8613800138000")  # 张三, VIP in the demo data
    assert result.variables["CC_PRIORITY"] == "10"


def test_queue_callback_keeps_the_callers_place_in_line(server_at: Server, db: Database) -> None:
    joined = datetime(2026, 11, 24, 9, 52, 30, tzinfo=UTC)
    result = place(
        server_at,
        DAY,
        script="queue-callback",
        caller_number="+8615000150000",
        channel_vars={"CC_ENQUEUED_AT": f"{joined.timestamp():.3f}", "CC_LANGUAGE": "en"},
    )
    assert result.prompts == ["callcenter/hotline/en/callback_booked"] and result.hung_up
    [task] = tasks(db)
    assert (task.kind, task.enqueued_at, task.due_at, task.language) == ("queue_callback", joined, DAY, "en")
    assert the_call(db, result.linkedid).end_reason == "queue_callback"


def test_queue_timeout_becomes_a_missed_call_callback(server_at: Server, db: Database) -> None:
    result = place(server_at, DAY, "timeout", script="after-hours", extra_env={"agi_arg_1": "TIMEOUT"})
    assert result.prompts[0] == "callcenter/hotline/zh/missed"
    [task] = tasks(db)
    assert task.kind == "missed_call" and task.due_at == DAY  # open now: due at once


def test_after_hours_script_from_the_dialplan(server_at: Server, db: Database) -> None:
    result = place(server_at, NIGHT, "timeout", script="after-hours")
    assert result.prompts[0] == "callcenter/hotline/zh/closed"
    assert [task.kind for task in tasks(db)] == ["after_hours"]


def test_outbound_survey_is_logged_against_the_customer(server_at: Server, db: Database) -> None:
    result = place(
        server_at,
        DAY,
        "4",
        script="outbound",
        caller_number="+864008001234",
        channel_vars={"CC_NUMBER": "+8615000150000", "CC_FLOW_ENTRY": "survey", "CC_TASK_ID": "42"},
    )
    assert result.prompts[0] == "callcenter/outbound/zh/survey_intro"
    call = the_call(db, result.linkedid)
    assert (call.direction, call.to_e164, call.end_reason) == (
        "outbound",
        "+8615000150000",
        "survey_answered",
    )
    with db.sessions() as session:
        customer = session.get(Caller, call.caller_id)
        assert customer is not None and customer.e164 == "+8615000150000"
        answers = [event.data for event in session.get(Call, call.id).events if event.kind == "ivr.input"]  # type: ignore[union-attr]
    assert answers == [{"digits": "4", "outcome": "option"}]


@pytest.mark.parametrize(
    ("when", "inputs", "last_node"),
    [
        (DAY, ["hangup"], "welcome"),
        (DAY, ["timeout", "hangup"], "main_menu"),
        (DAY, ["hangup-at-menu"], "main_menu"),
        (DAY, ["2", "hangup"], "route_complaint"),
        (DAY, ["8", "hangup"], "main_menu"),
        (NIGHT, [".", "hangup"], "closed"),
        (NIGHT, ["hangup-at-menu"], "voicemail_menu"),
        (NIGHT, ["1", "hangup"], "voicemail"),
        (NIGHT, ["1", ".", "hangup"], "voicemail"),
        (NIGHT, ["1", ".", "#", "hangup"], "voicemail_thanks"),
        (NIGHT, ["timeout", "hangup"], "goodbye"),
    ],
)
def test_hang_up_in_every_node_is_abandoned_there(
    server_at: Server, db: Database, when: datetime, inputs: list[str], last_node: str
) -> None:
    tokens = ["." if token == "hangup-at-menu" else token for token in inputs]
    if "hangup-at-menu" in inputs:  # listen to the announcements, then hang up at the menu's GET DATA
        tokens = [".", ".", "hangup"] if when == NIGHT else [".", "hangup"]
    result = place(server_at, when, *tokens)
    assert result.hung_up
    call = the_call(db, result.linkedid)
    assert (call.disposition, call.last_node) == ("abandoned_in_ivr", last_node)
    if when == NIGHT:  # the callback was promised before the caller could hang up
        assert [task.kind for task in tasks(db)] == ["after_hours"]


def test_hang_up_while_recording_keeps_the_voicemail(server_at: Server, db: Database) -> None:
    result = place(server_at, NIGHT, "1", ".", "hangup")
    assert result.recordings
    [voicemail] = recordings(db)
    assert voicemail.kind == "voicemail" and voicemail.call_id == the_call(db, result.linkedid).id


def test_replayed_after_hours_session_creates_one_task_and_one_recording(
    server_at: Server, db: Database
) -> None:
    first = place(server_at, NIGHT, "1", "#", caller_number="+8615000150000")
    again = place(
        server_at,
        NIGHT,
        "1",
        "#",
        caller_number="+8615000150000",
        linkedid=first.linkedid,
        uniqueid=first.uniqueid,
    )
    assert again.recordings == first.recordings
    assert len(tasks(db)) == 1 and len(recordings(db)) == 1


def test_a_withheld_number_gets_an_unreachable_task_for_a_human(server_at: Server, db: Database) -> None:
    place(server_at, NIGHT, "timeout", caller_number="anonymous")
    [task] = tasks(db)
    assert (task.status, task.number_e164) == ("unreachable", None)
    assert task.note == "no callable number: anonymous"
