"""The captured call, played by the fake AMI server, becomes one complete contact record."""

from __future__ import annotations

import copy
import json
import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.db import Database
from callcenter.events import SCREEN_POP, Event, LocalBus
from callcenter.models import Agent, AgentPresence, Call, CallEvent, PresenceLog, Queue, Recording
from callcenter.settings import Settings
from callcenter.voice.ami.main import AmiService, build_ami
from tests.conftest import FIXED_NOW, _truncate
from tests.voice.ami.conftest import wait_for
from tests.voice.ami.fakeami import FakeAmi

LINKEDID = "1795424087.4"
AGENT_INTERFACE = "Local/agent-consult@agents/n"
RECORDING = "hotline-20261123-085447-1795424087.5.wav"


def ts(stamp: str) -> datetime:
    seconds, micros = stamp.split(".")
    return datetime.fromtimestamp(int(seconds), UTC) + timedelta(microseconds=int(micros))


def seed(db: Database) -> None:
    with db.transaction() as session:
        for name in ("consultation", "complaint"):
            session.add(Queue(name=name, title_zh=name, title_en=name, created_at=FIXED_NOW))
        session.add(Agent(name="Agent Consult", extension=AGENT_INTERFACE, created_at=FIXED_NOW))
        session.add(Agent(name="Wang", extension="PJSIP/1001", created_at=FIXED_NOW))


@pytest.fixture
def bus() -> LocalBus:
    return LocalBus()


@pytest.fixture
def pops(bus: LocalBus) -> list[Event]:
    received: list[Event] = []
    bus.subscribe(SCREEN_POP, received.append)
    return received


@pytest.fixture
def service(ami_settings: Settings, db: Database, fake_ami: FakeAmi, bus: LocalBus) -> Iterator[AmiService]:
    seed(db)
    built = build_ami(ami_settings, db, lambda: FIXED_NOW, bus=bus)
    assert built is not None
    built.start()
    fake_ami.wait_logins(1)
    yield built
    built.stop()


def play(service: AmiService, fake_ami: FakeAmi, events: list[dict[str, str]]) -> None:
    client = service.client
    expected = client.stats.events + len(events)
    fake_ami.send_events(events)
    wait_for(lambda: client.stats.events >= expected, message="events received")
    assert client.drain()


def snapshot(db: Database) -> dict[str, Any]:
    """Everything the listener writes, without ids and write times."""
    with db.read() as session:
        calls = session.execute(select(Call)).scalars().all()
        assert len(calls) == 1, [call.external_id for call in calls]
        call = calls[0]
        agent = session.get(Agent, call.agent_id) if call.agent_id else None
        queue = session.get(Queue, call.queue_id) if call.queue_id else None
        events = session.execute(select(CallEvent).order_by(CallEvent.key)).scalars().all()
        recordings = session.execute(select(Recording)).scalars().all()
        return {
            "call": {
                column: getattr(call, column)
                for column in (
                    "channel",
                    "external_id",
                    "from_e164",
                    "caller_name",
                    "started_at",
                    "answered_at",
                    "ended_at",
                    "queue_name",
                    "wait_s",
                    "talk_s",
                    "disposition",
                    "end_reason",
                    "agent_interface",
                    "hangup_side",
                    "transfers",
                )
            },
            "agent": agent.name if agent else None,
            "queue": queue.name if queue else None,
            "events": [(e.key, e.kind, e.at, e.seq, json.dumps(e.data, sort_keys=True)) for e in events],
            "recordings": sorted((r.external_id, r.status, r.kind, r.started_at) for r in recordings),
        }


def test_the_captured_call_makes_one_complete_contact_record(
    service: AmiService, fake_ami: FakeAmi, db: Database, capture: list[dict[str, str]], pops: list[Event]
) -> None:
    play(service, fake_ami, capture)
    record = snapshot(db)
    call = record["call"]
    assert (call["channel"], call["external_id"]) == ("asterisk", LINKEDID)
    assert (call["from_e164"], call["caller_name"]) == ("+8613800138000", "Zhang San")
    assert (record["queue"], record["agent"], call["agent_interface"]) == (
        "consultation",
        "Agent Consult",
        AGENT_INTERFACE,
    )
    assert call["answered_at"] == ts("1795424089.949905")
    assert (call["wait_s"], call["talk_s"]) == (0, 5)
    assert call["ended_at"] == ts("1795424094.968805")
    assert (call["disposition"], call["hangup_side"]) == ("answered", "agent")
    assert call["started_at"] == ts("1795424087.766935")  # MIXMONITOR_FILENAME, the first event mapped
    assert record["recordings"] == [(RECORDING, "pending", "call", ts("1795424087.766935"))]
    kinds = sorted(kind for _, kind, *_ in record["events"])
    assert kinds == [
        "agent.complete",
        "agent.connect",
        "agent.ringing",
        *["call.hangup"] * 4,
        "queue.join",
        "recording.started",
    ]
    assert service.listener.stats.seen == 9 and service.listener.stats.spooled == 0


def test_screen_pops_go_to_the_ringing_then_connected_agent(
    service: AmiService, fake_ami: FakeAmi, db: Database, capture: list[dict[str, str]], pops: list[Event]
) -> None:
    play(service, fake_ami, capture)
    with db.read() as session:
        call_id = session.execute(select(Call.id)).scalar_one()
    assert [pop.payload["state"] for pop in pops] == ["ringing", "connected"]
    ringing = pops[0].payload
    assert ringing["agent"] == AGENT_INTERFACE and ringing["member"] == "Agent Consult"
    assert (ringing["linkedid"], ringing["call_id"], ringing["queue"]) == (LINKEDID, call_id, "consultation")
    assert (ringing["caller"], ringing["caller_name"]) == ("+8613800138000", "Zhang San")
    play(service, fake_ami, capture)  # the same events again: no second pop
    assert len(pops) == 2


def test_replays_duplicates_and_any_order_give_the_same_record(
    service: AmiService, fake_ami: FakeAmi, db: Database, capture: list[dict[str, str]]
) -> None:
    play(service, fake_ami, capture)
    expected = snapshot(db)
    play(service, fake_ami, capture)  # the same stream twice
    assert snapshot(db) == expected
    variants = [
        [event for event in capture for _ in range(2)],  # every event duplicated
        list(reversed(capture)),
        *[random.Random(seed).sample(capture, len(capture)) for seed in range(3)],
    ]
    for events in variants:
        _truncate(db)
        seed(db)
        play(service, fake_ami, events)
        assert snapshot(db) == expected


def test_a_drop_mid_stream_reconnects_logs_the_gap_and_loses_nothing(
    service: AmiService,
    fake_ami: FakeAmi,
    db: Database,
    capture: list[dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    play(service, fake_ami, capture)
    expected = snapshot(db)
    _truncate(db)
    seed(db)
    caplog.set_level(logging.WARNING)
    cut = 70  # after AgentCalled, before AgentConnect
    assert capture[cut - 1]["Event"] != "AgentConnect"
    play(service, fake_ami, capture[:cut])
    fake_ami.drop()
    fake_ami.wait_logins(2)
    assert service.client.wait_connected(5)
    play(service, fake_ami, capture[cut - 10 :])  # Asterisk does not resend; overlap anyway
    assert snapshot(db) == expected
    assert len(service.client.gaps) == 1
    assert "AMI event gap after reconnect" in caplog.text


def abandoned(capture: list[dict[str, str]]) -> list[dict[str, str]]:
    """The captured call cut at QueueCallerJoin: the caller waits 30 s, abandons, and hangs up."""
    join_at = next(i for i, event in enumerate(capture) if event["Event"] == "QueueCallerJoin")
    events = copy.deepcopy(capture[: join_at + 1])
    join = events[-1]
    abandon = {
        **join,
        "Event": "QueueCallerAbandon",
        "Timestamp": "1795424119.948809",
        "Position": "1",
        "OriginalPosition": "1",
        "HoldTime": "30",
    }
    del abandon["Count"]
    hangups = [event for event in capture if event["Event"] == "Hangup" and "hotline" in event["Channel"]]
    for index, hangup in enumerate(hangups):
        events.append({**hangup, "Timestamp": f"1795424119.95000{index}"})
    return [*events, abandon]  # the abandon arrives last


def test_a_caller_who_abandons_in_the_queue(
    service: AmiService, fake_ami: FakeAmi, db: Database, capture: list[dict[str, str]], pops: list[Event]
) -> None:
    play(service, fake_ami, abandoned(capture))
    record = snapshot(db)
    call = record["call"]
    assert (call["disposition"], call["queue_name"], call["wait_s"]) == (
        "abandoned_in_queue",
        "consultation",
        30,
    )
    assert (call["answered_at"], call["talk_s"], record["agent"]) == (None, None, None)
    assert call["hangup_side"] == "caller"
    assert call["ended_at"] == ts("1795424119.950001")
    assert pops == []


def test_a_blind_transfer_is_kept_on_the_call(
    service: AmiService, fake_ami: FakeAmi, db: Database, capture: list[dict[str, str]]
) -> None:
    events = copy.deepcopy(capture)
    complete = next(event for event in events if event["Event"] == "AgentComplete")
    complete["Reason"] = "transfer"
    transfer = {
        "Event": "BlindTransfer",
        "Privilege": "call,all",
        "Timestamp": "1795424093.000001",
        "Result": "Success",
        "TransfererChannel": "Local/agent-consult@agents-00000003;1",
        "TransfererUniqueid": "1795424089.6",
        "TransfererLinkedid": LINKEDID,
        "TransfereeChannel": "Local/100@hotline-00000002;2",
        "TransfereeUniqueid": "1795424087.5",
        "TransfereeLinkedid": LINKEDID,
        "IsExternal": "No",
        "Context": "callcenter-departments",
        "Extension": "8001",
    }
    play(service, fake_ami, [*events, transfer])
    call = snapshot(db)["call"]
    assert call["transfers"] == [
        {
            "at": ts("1795424093.000001").isoformat(),
            "type": "blind",
            "result": "Success",
            "exten": "8001",
            "context": "callcenter-departments",
            "channel": "Local/agent-consult@agents-00000003;1",
            "transferee": "Local/100@hotline-00000002;2",
            "talk_s": 2,  # the leg after the transfer, up to the caller's hang-up
        }
    ]
    assert (call["hangup_side"], call["disposition"]) == ("transfer", "answered")
    # The agent's talk ends at the transfer, not when the caller finally hangs up.
    assert call["talk_s"] == round((ts("1795424093.000001") - call["answered_at"]).total_seconds())


def test_a_cdr_names_the_recording_and_keeps_its_durations(
    service: AmiService, fake_ami: FakeAmi, db: Database, capture: list[dict[str, str]]
) -> None:
    cdrs = [
        {  # no Linkedid header (cdr_manager's default fields): found through the leg's Uniqueid
            "Event": "Cdr",
            "Timestamp": "1795424094.970000",
            "UniqueID": "1795424087.5",
            "Channel": "Local/100@hotline-00000002;2",
            "DestinationChannel": "Local/agent-consult@agents-00000003;1",
            "LastApplication": "Queue",
            "Disposition": "ANSWERED",
            "Duration": "7",
            "BillableSeconds": "7",
            "UserField": f"/var/spool/asterisk/monitor/{RECORDING}",
        },
        {
            "Event": "Cdr",
            "Timestamp": "1795424094.970100",
            "UniqueID": "1795424089.6",
            "LinkedID": LINKEDID,
            "Disposition": "ANSWERED",
            "Duration": "5",
            "BillableSeconds": "5",
            "UserField": "agents/consult-1795424089.6.wav",
        },
    ]
    play(service, fake_ami, [*capture, *cdrs])
    record = snapshot(db)
    assert [r[0] for r in record["recordings"]] == ["agents/consult-1795424089.6.wav", RECORDING]
    cdr_data = [json.loads(data) for _, kind, _, _, data in record["events"] if kind == "cdr"]
    assert [(d["disposition"], d["duration"], d["billsec"]) for d in cdr_data] == [
        ("ANSWERED", 7, 7),
        ("ANSWERED", 5, 5),
    ]
    assert record["call"]["disposition"] == "answered"


def test_a_queue_member_is_matched_to_the_agent_by_its_extension(
    service: AmiService, fake_ami: FakeAmi, db: Database, capture: list[dict[str, str]]
) -> None:
    events = copy.deepcopy(capture)
    for event in events:
        if event.get("Interface") == AGENT_INTERFACE:
            event["Interface"], event["MemberName"] = "PJSIP/1001", "Wang"
    play(service, fake_ami, events)
    record = snapshot(db)
    assert (record["agent"], record["call"]["agent_interface"]) == ("Wang", "PJSIP/1001")


def test_events_with_the_database_down_are_spooled_and_replayed(
    ami_settings: Settings, db: Database, fake_ami: FakeAmi, capture: list[dict[str, str]], bus: LocalBus
) -> None:
    seed(db)
    built = build_ami(ami_settings, db, lambda: FIXED_NOW, bus=bus)
    assert built is not None
    recorder = built.listener.recorder
    real_db = recorder.db
    recorder.db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")  # refused at once
    try:
        with built:
            fake_ami.wait_logins(1)
            play(built, fake_ami, capture)
    finally:
        recorder.db.dispose()
        recorder.db = real_db
    assert built.listener.stats.spooled == 9 and built.listener.stats.recorded == 0
    result = recorder.replay()
    assert (result.applied, result.remaining) == (9, 0)
    call = snapshot(db)["call"]
    assert (call["disposition"], call["talk_s"]) == ("answered", 5)


def test_hangups_of_calls_we_do_not_handle_add_no_record(
    service: AmiService, fake_ami: FakeAmi, db: Database, capture: list[dict[str, str]]
) -> None:
    hangup = next(event for event in capture if event["Event"] == "Hangup")
    internal = {**hangup, "Uniqueid": "1795429999.1", "Linkedid": "1795429999.1", "Timestamp": "1795429999.5"}
    play(service, fake_ami, [internal])
    with db.read() as session:
        assert session.execute(select(Call)).first() is None
    assert service.listener.stats.foreign == 1
    play(service, fake_ami, capture)  # a call of ours: its hang-up counts again
    assert snapshot(db)["call"]["ended_at"] is not None


def _as_wang(capture: list[dict[str, str]]) -> list[dict[str, str]]:
    events = copy.deepcopy(capture)
    for event in events:
        if event.get("Interface") == AGENT_INTERFACE:
            event["Interface"], event["MemberName"] = "PJSIP/1001", "Wang"
    return events


def _presence(db: Database) -> tuple[str, int | None] | None:
    with db.read() as session:
        agent_id = session.execute(select(Agent.id).where(Agent.extension == "PJSIP/1001")).scalar_one()
        row = session.get(AgentPresence, agent_id)
        return (row.status, row.call_id) if row is not None else None


def _pauses(fake_ami: FakeAmi) -> list[tuple[str, str, str]]:
    return [
        (action["Interface"], action["Paused"], action.get("Reason", ""))
        for action in fake_ami.actions
        if action.get("Action") == "QueuePause"
    ]


def test_an_agent_with_no_console_open_enters_wrap_up_when_the_call_completes(
    service: AmiService, fake_ami: FakeAmi, db: Database, capture: list[dict[str, str]]
) -> None:
    """No browser, no web process: AgentConnect → on a call, AgentComplete → wrap-up, and each change
    is a QueuePause sent on the listener's own connection (no second AMI login)."""
    events = _as_wang(capture)
    complete = next(i for i, event in enumerate(events) if event["Event"] == "AgentComplete")
    play(service, fake_ami, events[:complete])
    with db.read() as session:
        call_id = session.execute(select(Call.id)).scalar_one()
    assert _presence(db) == ("on_call", call_id)
    wait_for(lambda: _pauses(fake_ami) == [("PJSIP/1001", "true", "on_call")], message="QueuePause on_call")
    play(service, fake_ami, events[complete:])  # AgentComplete, then the hang-ups
    assert _presence(db) == ("wrap_up", call_id)
    wait_for(lambda: len(_pauses(fake_ami)) == 2, message="QueuePause wrap_up")
    assert _pauses(fake_ami)[1] == ("PJSIP/1001", "true", "wrap_up")
    assert fake_ami.connections == 1 and fake_ami.logins == 1  # the listener's connection only
    with db.read() as session:
        log = [row.status for row in session.execute(select(PresenceLog).order_by(PresenceLog.id)).scalars()]
    assert log == ["on_call", "wrap_up"]
    play(service, fake_ami, events)  # the same events again change nothing
    assert _presence(db) == ("wrap_up", call_id) and len(_pauses(fake_ami)) == 2


def test_the_callers_hang_up_puts_the_agent_in_wrap_up(
    service: AmiService, fake_ami: FakeAmi, db: Database, capture: list[dict[str, str]]
) -> None:
    events = [event for event in _as_wang(capture) if event["Event"] != "AgentComplete"]
    play(service, fake_ami, events)
    with db.read() as session:
        call_id = session.execute(select(Call.id)).scalar_one()
    assert _presence(db) == ("wrap_up", call_id)
