"""The real-Asterisk captures, replayed into the AMI listener and FastAGI server, give the record of spec 16.

Each expected value below is worked out by hand from the capture (tests/captures/scenarios/<name>/),
with the line it comes from: ``ami:N`` is line N of ami.jsonl, ``agi-K:ms`` the line of agi-K.txt at
that offset. The rules are those of issue 16's contract (the contact record on a real Asterisk).
Times from AMI are exact (the event's Timestamp); times the app reads from its clock during an AGI
session are checked to within a few ms of the captured line (the clock moves with each delivery).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import Call
from callcenter.services import transfers
from callcenter.settings import Settings
from tests.replay.conftest import Replay, Snapshot
from tests.replay.harness import AmiMessage, epoch, load, swapped, timeline

T = epoch
SH = "+8613800138000"  # 张三, the simulated caller (agi_callerid)


def near(actual: datetime | None, stamp: str, ms: int = 10) -> bool:
    """``actual`` within ``ms`` of the captured instant (the app reads its clock around the line)."""
    return actual is not None and abs(actual - T(stamp)) <= timedelta(milliseconds=ms)


def at(stamp: str, ms: int) -> str:
    """A session's accept epoch + a line's offset, as an epoch string."""
    return str(Decimal(stamp) + Decimal(ms) / 1000)


# --- the expected records --------------------------------------------------------------------------

INBOUND = {
    "channel": "asterisk",
    "direction": "inbound",
    "from_raw": SH,  # agi_callerid
    "from_e164": SH,
    "to_raw": "100",  # agi_dnid is "unknown": agi_extension
    "caller_name": "张三",  # agi_calleridname
    "transfers": [],
}

EXPECTED: dict[str, dict[str, Any]] = {
    "answered-consultation": {
        "call": {
            **INBOUND,
            "external_id": "1796225004.0",  # agi-1:4 CHANNEL(linkedid)
            "started_at": T("1796225004.688314"),  # ami:28 VarSet MIXMONITOR_FILENAME, the first event
            "answered_at": T("1796225029.689686"),  # ami:154 AgentConnect
            "ended_at": T("1796225037.695864"),  # ami:204 Hangup of the linkedid leg ;1 (last caller leg)
            "wait_s": 0,  # ami:154 HoldTime 0
            "talk_s": 8,  # ami:199 AgentComplete TalkTime 8
            "disposition": "answered",
            "end_reason": None,
            "hangup_side": "agent",  # ami:199 Reason agent
            "ivr_branch": "consultation",  # agi-1:24989 CC_BRANCH
            "queue_name": "consultation",  # ami:88 QueueCallerJoin
            "priority": 10,  # agi-1:24989 CC_PRIORITY 10 (VIP)
            "ivr_path": ["welcome", "hours", "main_menu", "route_consultation"],  # agi-1 prompts
            "agent_interface": "Local/1003@agents-sim/n",
        },
        "agent": "王芳",  # ami:154 MemberName
        "nodes": [  # node, when reached: its first prompt starts (hours: when welcome finished)
            ("welcome", at("1796225004.689042", 27)),  # agi-1:27 STREAM FILE welcome
            ("hours", at("1796225004.689042", 14589)),  # agi-1:14589 welcome ended
            ("main_menu", at("1796225004.689042", 14590)),  # agi-1:14590 GET DATA main_menu
            ("route_consultation", at("1796225004.689042", 19854)),  # agi-1:19854 to_consultation
        ],
        "recordings": [("2026/12/02/1796225004.1.wav", "call", "verified", 8.02)],  # notes: 128364 B
        "files": {"2026/12/02/1796225004.1.wav": 128320},
        "callbacks": [],
        "missed_rings": [],
    },
    "queue-timeout-then-after-hours": {
        "call": {
            **INBOUND,
            "external_id": "1796225086.4",
            "started_at": T("1796225087.093114"),  # ami:28 VarSet MIXMONITOR_FILENAME
            "answered_at": None,
            "ended_at": T("1796225150.322643"),  # ami:183 Hangup ;2 (after the AGI HANGUP, agi-2:27152)
            "wait_s": 10,  # no AgentConnect: the time in the queue, QueueCallerAbandon HoldTime 10
            "talk_s": None,
            "disposition": "queue_timeout",  # ami:149 QUEUESTATUS=TIMEOUT; agi-2 agi_arg_1 TIMEOUT
            "end_reason": "queue_timeout",
            "hangup_side": "ivr",  # the after-hours script ended it (agi-2:27152 HANGUP)
            "ivr_branch": "complaint",  # agi-1:26068 CC_BRANCH
            "queue_name": "complaint",
            "priority": 10,
            "ivr_path": [  # agi-1, then agi-2: missed, voicemail_offer (timeout), goodbye
                "welcome",
                "hours",
                "main_menu",
                "route_complaint",
                "missed",
                "voicemail_menu",
                "goodbye",
            ],
            "agent_interface": None,  # 李娜 rang (ami:105) but never connected
        },
        "agent": None,
        "nodes": [
            ("welcome", at("1796225087.093802", 21)),
            ("hours", at("1796225087.093802", 14583)),
            ("main_menu", at("1796225087.093802", 14584)),
            ("route_complaint", at("1796225087.093802", 19853)),
            ("missed", at("1796225123.168462", 10)),  # agi-2:10 STREAM FILE missed
            ("voicemail_menu", at("1796225123.168462", 11879)),  # agi-2:11879 GET DATA voicemail_offer
            ("goodbye", at("1796225123.168462", 22689)),  # agi-2:22689 STREAM FILE goodbye
        ],
        "recordings": [("2026/12/02/1796225086.5.wav", "call", "empty", None)],  # notes: 44 bytes
        "files": {"2026/12/02/1796225086.5.wav": 0},
        "callbacks": [
            {
                "kind": "missed_call",  # node missed of the after-hours session
                "queue_name": "complaint",  # CC_QUEUE of the caller (agi-1:26066)
                "due_at": at("1796225123.168462", 5),  # hours open: due when requested (agi-2 start)
                "enqueued_at": T("1796225113.163"),  # agi-2:5 CC_ENQUEUED_AT
                "status": "pending",
                "number_e164": SH,
                "priority": 10,
            }
        ],
        "missed_rings": [
            # ami:110 AgentRingNoAnswer 李娜 RingTime 10000
            {
                "agent": "李娜",
                "interface": "Local/1002@agents-sim/n",
                "member": "李娜",
                "queue": "complaint",
                "ring_s": 10,
                "at": T("1796225123.167367"),
            },
        ],
    },
    "join-refused-all-paused": {
        "call": {
            **INBOUND,
            "external_id": "1796225191.8",
            "started_at": T("1796225191.964591"),  # ami:35 VarSet MIXMONITOR_FILENAME
            "answered_at": None,
            "ended_at": T("1796225245.183789"),  # ami:127 Hangup ;2
            "wait_s": None,
            "talk_s": None,
            "disposition": "queue_refused",  # ami:95 QUEUESTATUS=JOINEMPTY, no QueueCaller* event
            "end_reason": "queue_refused (JOINEMPTY)",
            "hangup_side": "ivr",  # agi-2:27147 HANGUP
            "ivr_branch": "complaint",
            "queue_name": "complaint",  # agi-1:26067 CC_QUEUE (Queue() refused the join)
            "priority": 10,
            "ivr_path": [
                "welcome",
                "hours",
                "main_menu",
                "route_complaint",
                "missed",
                "voicemail_menu",
                "goodbye",
            ],
            "agent_interface": None,
        },
        "agent": None,
        "nodes": [
            ("welcome", at("1796225191.964982", 25)),
            ("missed", at("1796225218.035143", 4)),  # agi-2:4 STREAM FILE missed
            ("goodbye", at("1796225218.035143", 22682)),
        ],
        "recordings": [("2026/12/02/1796225191.9.wav", "call", "empty", None)],
        "files": {"2026/12/02/1796225191.9.wav": 0},
        "callbacks": [
            {
                "kind": "missed_call",
                "queue_name": "complaint",
                "due_at": at("1796225218.035143", 3),  # agi-2:3, hours open
                "enqueued_at": T("1796225218.033"),  # agi-2:3 CC_ENQUEUED_AT
                "status": "pending",
                "number_e164": SH,
                "priority": 10,
            }
        ],
        "missed_rings": [],
    },
    "queue-callback-press-1": {
        "call": {
            **INBOUND,
            "external_id": "1796225294.14",
            "started_at": T("1796225294.852378"),  # ami:32
            "answered_at": None,
            "ended_at": T("1796225365.772167"),  # ami:149 Hangup ;1 (the last caller leg)
            "wait_s": None,
            "talk_s": None,
            "disposition": "queue_callback",  # ami:118 QueueCallerLeave Priority 0, queue-exit context
            "end_reason": "queue_callback",
            "hangup_side": "ivr",  # agi-2:12458 HANGUP after callback_booked
            "ivr_branch": "consultation",
            "queue_name": "consultation",
            "priority": 10,
            "ivr_path": [
                "welcome",
                "hours",
                "main_menu",
                "route_consultation",
                "queue_callback",
                "callback_booked",
            ],
            "agent_interface": None,
        },
        "agent": None,
        "nodes": [
            ("route_consultation", at("1796225294.853556", 19852)),
            ("queue_callback", at("1796225353.309242", 5)),  # agi-2:5 STREAM FILE callback_booked
            ("callback_booked", at("1796225353.309242", 12457)),  # silent: the prompt ended
        ],
        "recordings": [("2026/12/02/1796225294.15.wav", "call", "empty", None)],
        "files": {"2026/12/02/1796225294.15.wav": 0},
        "callbacks": [
            {
                "kind": "queue_callback",
                "queue_name": "consultation",
                "due_at": at("1796225353.309242", 3),  # due = now, agi-2:3
                "enqueued_at": T("1796225319.840"),  # agi-2:3 CC_ENQUEUED_AT (place in line kept)
                "status": "pending",
                "number_e164": SH,
                "priority": 10,
            }
        ],
        "missed_rings": [],
    },
    "agent-ring-no-answer-then-answer": {
        "call": {
            **INBOUND,
            "external_id": "1796225489.24",
            "started_at": T("1796225490.436635"),  # ami:28
            "answered_at": T("1796225538.445977"),  # ami:184 AgentConnect 王芳
            "ended_at": T("1796225546.454993"),  # ami:237 Hangup ;2
            "wait_s": 23,  # ami:184 HoldTime 23
            "talk_s": 8,  # ami:196 TalkTime 8
            "disposition": "answered",
            "end_reason": None,
            "hangup_side": "agent",  # ami:196 Reason agent
            "ivr_branch": "consultation",
            "queue_name": "consultation",
            "priority": 10,
            "ivr_path": ["welcome", "hours", "main_menu", "route_consultation"],
            "agent_interface": "Local/1003@agents-sim/n",
        },
        "agent": "王芳",
        "nodes": [("welcome", at("1796225490.437781", 6))],
        "recordings": [("2026/12/02/1796225489.25.wav", "call", "verified", 8.0)],  # 128044 bytes
        "files": {"2026/12/02/1796225489.25.wav": 128000},
        "callbacks": [],
        "missed_rings": [
            # ami:110 AgentRingNoAnswer 张伟 RingTime 20000
            {
                "agent": "张伟",
                "interface": "Local/1001@agents-sim/n",
                "member": "张伟",
                "queue": "consultation",
                "ring_s": 20,
                "at": T("1796225535.433918"),
            },
        ],
    },
    "outbound-originate": {
        "call": {
            "channel": "asterisk",
            "external_id": "1796225627.34",
            "direction": "outbound",  # AGI script outbound; ChanVariable CC_TASK_ID=8 (ami:30)
            "from_raw": "",  # agi_callerid "unknown" is not a number
            "from_e164": None,
            "to_raw": SH,  # agi-1:5 CC_NUMBER
            "to_e164": SH,
            "caller_name": "",  # agi_calleridname unknown
            "started_at": T("1796225629.028051"),  # ami:30 VarSet MIXMONITOR_FILENAME
            "answered_at": T("1796225645.872539"),  # ami:158 AgentConnect
            "ended_at": T("1796225653.890210"),  # ami:207 Hangup of ;1, the linkedid leg
            "wait_s": 0,
            "talk_s": 8,  # ami:170
            "disposition": "answered",
            "end_reason": None,
            "hangup_side": "agent",  # ami:170 Reason agent
            "ivr_branch": "callback",  # agi-1:16831 CC_BRANCH
            "queue_name": "consultation",
            "priority": 0,  # agi-1:16831 CC_PRIORITY 0
            "ivr_path": None,  # checked below: the outbound flow's nodes, whatever their names
            "agent_interface": "Local/1003@agents-sim/n",
            "transfers": [],
        },
        "agent": "王芳",
        "nodes": [],
        "recordings": [("2026/12/02/1796225627.34.wav", "call", "verified", 8.0)],
        "files": {"2026/12/02/1796225627.34.wav": 128000},
        "callbacks": [],
        "missed_rings": [],
    },
    "transfer-redirect": {
        "call": {
            **INBOUND,
            "external_id": "1796225685.38",
            "started_at": T("1796225685.926772"),  # ami:28
            "answered_at": T("1796225710.919665"),  # ami:153 AgentConnect 张伟
            "ended_at": T("1796225726.341456"),  # ami:274 Hangup ;2 (the caller's leg, last)
            "wait_s": 0,
            # The console's transfer entry at the Redirect response (ami:164, after ami:163 at
            # 1796225716.318688): 716.318689 - 710.919665 = 5.399 s → 5.
            "talk_s": 5,
            "disposition": "answered",
            "end_reason": None,
            "hangup_side": "transfer",
            "ivr_branch": "consultation",
            "queue_name": "consultation",
            "priority": 10,
            "ivr_path": ["welcome", "hours", "main_menu", "route_consultation"],
            "agent_interface": "Local/1001@agents-sim/n",
            "transfers": None,  # checked below: one, to after_sales, talk_s 726.341456 - 716.318689 → 10
        },
        "agent": "张伟",
        "nodes": [],
        "recordings": [("2026/12/02/1796225685.39.wav", "call", "verified", 15.42)],  # 246764 bytes
        "files": {"2026/12/02/1796225685.39.wav": 246720},
        "callbacks": [],
        "missed_rings": [],
    },
    "ivr-ends-call": {
        "call": {
            **INBOUND,
            "external_id": "1796225751.46",
            "started_at": T("1796225752.018882"),  # ami:32
            "answered_at": None,
            "ended_at": T("1796225804.139274"),  # ami:80 Hangup ;1 (after the AGI HANGUP at 52118)
            "wait_s": None,
            "talk_s": None,
            "disposition": "ended_in_ivr",
            "end_reason": "voicemail",  # node voicemail_thanks
            "hangup_side": "ivr",
            "ivr_branch": None,
            "queue_name": None,
            "priority": 0,  # no Queue()
            "ivr_path": ["welcome", "hours", "closed", "voicemail_menu", "voicemail", "voicemail_thanks"],
            "agent_interface": None,
        },
        "agent": None,
        "nodes": [
            ("welcome", at("1796225752.019490", 47)),
            ("closed", at("1796225752.019490", 14629)),
            ("voicemail_menu", at("1796225752.019490", 29054)),
            ("voicemail", at("1796225752.019490", 30853)),
            ("voicemail_thanks", at("1796225752.019490", 45457)),
        ],
        "recordings": [
            ("2026/12/02/1796225751.47.wav", "call", "empty", None),  # 44 bytes
            ("voicemail/vm-1796225751.47.wav", "voicemail", "verified", 6.36),  # 101804 bytes
        ],
        "files": {"2026/12/02/1796225751.47.wav": 0, "voicemail/vm-1796225751.47.wav": 101760},
        "callbacks": [
            {
                "kind": "after_hours",
                "queue_name": "consultation",  # no CC_QUEUE: the default queue
                # hours 08:00–09:00 Shanghai; Wed 2026-12-02 23:35 → Thu 2026-12-03 08:00 +08:00
                "due_at": datetime(2026, 12, 3, 0, 0, tzinfo=UTC),
                "enqueued_at": None,
                "status": "pending",
                "number_e164": SH,
                "priority": 10,
            }
        ],
        "missed_rings": [],
    },
    "caller-hangup-in-ivr": {
        "call": {
            **INBOUND,
            "external_id": "1796225829.48",
            "started_at": T("1796225829.288102"),  # ami:32 (the AGI accept, .287451, read no clock yet)
            "answered_at": None,
            "ended_at": T("1796225835.323269"),  # ami:53 Hangup ;2 (;1 at ami:45 hung up first)
            "wait_s": None,
            "talk_s": None,
            "disposition": "abandoned_in_ivr",
            "end_reason": None,  # checked below: as today (the IVR's hang-up reason)
            "hangup_side": "caller",  # ami:45 Hangup ;1 Cause 16 first; agi-1:5981 result=-1
            "ivr_branch": None,
            "queue_name": None,
            "priority": 0,
            "ivr_path": ["welcome"],  # hung up 6 s into welcome
            "agent_interface": None,
        },
        "agent": None,
        "nodes": [("welcome", at("1796225829.287451", 26))],
        "recordings": [("2026/12/02/1796225829.49.wav", "call", "empty", None)],
        "files": {"2026/12/02/1796225829.49.wav": 0},
        "callbacks": [],
        "missed_rings": [],
    },
}

SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "queue-timeout-then-after-hours": {"ivr": {"queue_timeout_s": 10}},  # CALLCENTER_IVR__QUEUE_TIMEOUT_S
    # CALLCENTER_HOURS__OPEN=08:00, CLOSE=09:00 (working days; 2026-12-02 is a Wednesday)
    "ivr-ends-call": {"hours": {"open": "08:00", "close": "09:00"}},
}
SCENARIOS = sorted(EXPECTED)
AGI_KEY = re.compile(r"^agi:(?P<uniqueid>[^:]+):(?P<line>\d+@[^:]+):(?P<seq>\d+|fallback|exit|lost)$")


def transfer_on_redirect(db: Database, settings: Settings, message: AmiMessage) -> None:
    """What the console did when the Redirect succeeded (ami:164): log the transfer on the call."""
    if message.get("Message") != "Redirect successful":
        return
    department = next(item for item in settings.departments if item.asterisk_exten == "801")
    from tests.replay.harness import epoch as _epoch  # noqa: PLC0415 - same clock as the replay

    now = _epoch("1796225716.318689")
    # The plan as plan_transfer makes it for the caller's leg (ami:148 QueueCallerLeave Channel ;2);
    # built here so that its "call in progress" check (the state the listener derived) is not the
    # thing under test: the record after the transfer is.
    with db.transaction() as session:
        call_id = session.execute(select(Call.id)).scalar_one()
        plan = transfers.TransferPlan(
            call_id,
            "asterisk",
            "1796225685.38",
            "Local/100@callcenter-inbound-00000013;2",
            department,
            transfers.entry_key("replay0001"),
        )
        transfers.record_transfer(session, plan, by_user_id=1, now=now, region="CN")


def play(replay: Replay, name: str, *, variant: str = "natural") -> list[Snapshot]:
    scenario = load(name)
    expected = EXPECTED[name]
    responses = name == "transfer-redirect"
    if variant == "swapped":
        plays = [timeline(scenario, swapped(scenario), responses=responses)]
    elif variant == "twice":  # the whole capture again on the same services: natural keys
        plays = [timeline(scenario, responses=responses)] * 2
    else:
        plays = [timeline(scenario, responses=responses)]
    return replay.run(
        scenario,
        plays,
        files=expected["files"],
        on_response=transfer_on_redirect if responses else None,
        **SETTINGS.get(name, {}),
    )


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_replayed_capture_gives_the_spec_record(replay: Replay, db: Database, name: str) -> None:
    expected = EXPECTED[name]
    (record,) = play(replay, name)
    # Every command the app sent matched the capture, apart from GET VARIABLEs it does not have.
    assert all('GET VARIABLE "' in line for line in replay.extra), replay.extra
    call = dict(record.call)
    wanted = dict(expected["call"])
    for column in [
        column for column, value in wanted.items() if value is None and column in ("ivr_path", "transfers")
    ]:
        del wanted[column], call[column]
    if name == "caller-hangup-in-ivr":
        assert call.pop("end_reason"), "the IVR's hang-up reason"
        wanted.pop("end_reason")
    assert {column: call.get(column) for column in wanted} == wanted
    assert record.agent == expected["agent"]
    assert record.calls == 1

    if name == "outbound-originate":
        assert record.call["ivr_path"] and record.call["ivr_path"][0] != "welcome"
    if name == "transfer-redirect":
        (transfer,) = record.call["transfers"]
        assert transfer["department"] == "after_sales" and transfer["talk_s"] == 10

    # The timeline: no key twice, AGI keys per session line, each node entry at the moment reached.
    keys = [entry[0] for entry in record.entries]
    assert len(keys) == len(set(keys))
    for key in keys:
        if key.startswith("agi:"):
            assert AGI_KEY.match(key), f"AGI key without <priority>@<context>: {key}"
    reached = [(entry[2], entry[3]) for entry in record.entries if entry[1] == "ivr.node"]
    for node, stamp in expected["nodes"]:
        times = [moment for name_, moment in reached if name_ == node]
        assert times and near(times[0], stamp), f"ivr.node {node} at {times}, reached at {T(stamp)}"

    # Recordings after the verify run.
    got = [(r["path"], r["kind"], r["status"], r["duration_s"]) for r in record.recordings]
    want = [
        (path, kind, status, duration if status == "verified" else got_duration)
        for (path, kind, status, duration), (*_, got_duration) in zip(
            expected["recordings"], got + [("",) * 4] * len(expected["recordings"]), strict=False
        )
    ]
    assert got == want

    # Callback tasks: due_at from the app's clock within 10 ms of the session line.
    callbacks = record.callbacks
    assert len(callbacks) == len(expected["callbacks"])
    for task, wanted_task in zip(callbacks, expected["callbacks"], strict=True):
        due = wanted_task["due_at"]
        got_task = dict(task)
        if isinstance(due, str):
            assert near(task["due_at"], due), (task["due_at"], T(due))
            got_task["due_at"] = due
        assert got_task == wanted_task

    # Missed agent rings (REQUIREMENTS A10): table missed_ring.
    agents = _agent_names(db)
    rings = [
        {
            "agent": agents.get(row["agent_id"]),
            "queue": row["queue_name"],
            **{k: row[k] for k in ("interface", "member", "ring_s", "at")},
        }
        for row in record.missed_rings
    ]
    assert rings == expected["missed_rings"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_racing_orders_and_a_second_replay_give_the_same_record(replay: Replay, name: str) -> None:
    natural, again = (record.comparable() for record in play(replay, name, variant="twice"))
    assert again == natural  # the same capture twice: natural keys, nothing changes
    (racing,) = play(replay, name, variant="swapped")
    assert racing.comparable() == natural  # the racing pairs of the README in the other order


# queue-pause-permission has no call: its captured responses ("Permission denied", "Interface paused
# successfully", "Interface not found") are those of the QueuePause action, covered by the pause tests
# against the fake AMI server (tests/voice/ami); a replay has no contact record to check.


def _agent_names(db: Database) -> dict[int, str]:
    from callcenter.models import Agent  # noqa: PLC0415

    with db.read() as session:
        return {agent.id: agent.name for agent in session.execute(select(Agent)).scalars()}
