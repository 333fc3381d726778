"""The demo calls: a few days of calls placed the way Asterisk places them.

Each call goes through the real hotline: a FastAGI server (in this process, on a free local port,
its clock set to the call's time) and the simulated Asterisk that ``simulate-call`` uses, so the IVR
path, branch, VIP priority and hours are the flows' own. Answered calls then get the AMI events
Asterisk 22 sends when the queue rings an agent, the agent answers, MixMonitor records and the
caller hangs up, mapped by the AMI listener's own ``map_event`` onto the contact record. The
recording files are written to the monitor folder (``audio.py``).

Demo calls have fixed linkedids (``demo.01`` …): a call already on record is not placed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db import Database
from callcenter.models import Call
from callcenter.services import callers
from callcenter.services.calls import record_call
from callcenter.services.demo import audio
from callcenter.settings import Settings
from callcenter.voice.agi.main import build_server
from callcenter.voice.agi.server import RunningServer
from callcenter.voice.agi.simulate import CallScript, simulate_call
from callcenter.voice.ami.listener import map_event
from callcenter.voice.ami.protocol import Message

PREFIX = "demo."
IVR_S = 12  # from the call's start to joining the queue
HOLD_S, RING_S = 6, 3


@dataclass(frozen=True)
class DemoCall:
    index: int
    days_ago: int
    at: time  # local time of the call's start
    number: str
    inputs: tuple[str, ...]
    extension: str | None = None  # the agent who answers; None: nobody (hung up in the IVR)
    talk_s: int = 0

    @property
    def linkedid(self) -> str:
        return f"{PREFIX}{self.index:02d}"

    @property
    def recording(self) -> str:
        """The MixMonitor file, relative to the monitor folder."""
        return f"demo/{self.linkedid.replace('.', '-')}.wav"


CALLS: tuple[DemoCall, ...] = (
    DemoCall(1, 3, time(9, 12), "+8613800138000", ("1",), "1001", 95),
    DemoCall(2, 3, time(10, 40), "+8613900139000", ("2",), "1002", 140),
    DemoCall(3, 3, time(14, 5), "+8615000150000", ("1",), "1003", 65),
    DemoCall(4, 2, time(9, 30), "+862161234567", ("1",), "1001", 120),
    DemoCall(5, 2, time(11, 15), "+8613800138000", ("2",), "1003", 180),
    DemoCall(6, 2, time(16, 20), "+8615000150000", ("2",), "1002", 75),
    DemoCall(7, 2, time(17, 45), "+8613900139000", ("hangup",)),
    DemoCall(8, 1, time(8, 50), "+8613900139000", ("1",), "1003", 50),
    DemoCall(9, 1, time(10, 5), "+8615000150000", ("2",), "1002", 110),
    DemoCall(10, 1, time(15, 30), "+862161234567", ("1",), "1001", 85),
)


class StepClock:
    """The FastAGI server's clock for one demo call: starts at the call's time, a second per reading."""

    def __init__(self) -> None:
        self.at = datetime.fromtimestamp(0).astimezone()

    def set(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


def start_of(call: DemoCall, now: datetime, settings: Settings) -> datetime:
    day = now.astimezone(settings.zone).date() - timedelta(days=call.days_ago)
    return datetime.combine(day, call.at, tzinfo=settings.zone)


@dataclass(frozen=True)
class Placed:
    placed: int
    audio_source: str


def place_calls(settings: Settings, db: Database, now: datetime, calls: Sequence[DemoCall] = CALLS) -> Placed:
    """Place the demo calls not on record yet, write every answered call's recording file."""
    with db.read() as session:
        known = set(
            session.execute(select(Call.external_id).where(Call.external_id.startswith(PREFIX))).scalars()
        )
        names = {call.number: _name(session, call.number) for call in calls}
    todo = [call for call in calls if call.linkedid not in known]
    if todo:
        clock = StepClock()
        server = build_server(settings, db, clock, port=0)
        with RunningServer(server):
            for call in todo:
                clock.set(start_of(call, now, settings))
                script = CallScript(
                    caller_number=call.number,
                    caller_name=names[call.number],
                    inputs=call.inputs,
                    linkedid=call.linkedid,
                    uniqueid=call.linkedid,
                )
                result = simulate_call(settings.agi.host, server.port, script, timeout_s=10)
                server.fallback.recorder.flush()
                if call.extension is not None and result.queue:
                    _answer(settings, db, call, names[call.number], result.queue, now)
    return Placed(len(todo), _write_recordings(settings, calls))


def _name(session: Session, number: str) -> str:
    found = callers.find_caller(session, number)
    return found.name if found is not None else ""


def _answer(settings: Settings, db: Database, call: DemoCall, name: str, queue: str, now: datetime) -> None:
    """What Asterisk's AMI reports for an answered, recorded call, on the contact record."""
    start = start_of(call, now, settings)
    joined = start + timedelta(seconds=IVR_S)
    connected = joined + timedelta(seconds=HOLD_S + RING_S)
    ended = connected + timedelta(seconds=call.talk_s)
    monitor = settings.storage.asterisk_monitor_dir.rstrip("/")
    for message in _events(call, name, queue, joined, connected, ended, f"{monitor}/{call.recording}"):
        report = map_event(message, monitor_dir=settings.storage.asterisk_monitor_dir, clock=lambda: now)
        if report is None:
            continue
        with db.transaction() as session:
            record_call(
                session, report.seen, report.entries, region=settings.organisation.phone_region, now=now
            )


def _events(
    call: DemoCall, name: str, queue: str, joined: datetime, connected: datetime, ended: datetime, path: str
) -> list[Message]:
    serial = call.linkedid.replace(".", "")
    caller_channel, agent_channel = f"PJSIP/trunk-{serial}", f"PJSIP/{call.extension}-{serial}"

    def event(name_: str, at: datetime, *extra: tuple[str, str], member: bool = True) -> Message:
        base = [
            ("Event", name_),
            ("Privilege", "agent,all"),
            ("Timestamp", f"{at.timestamp():.6f}"),
            ("Channel", caller_channel),
            ("CallerIDNum", call.number),
            ("CallerIDName", name),
            ("Uniqueid", call.linkedid),
            ("Linkedid", call.linkedid),
        ]
        if member:
            base += [
                ("DestChannel", agent_channel),
                ("DestUniqueid", call.linkedid + "1"),
                ("DestLinkedid", call.linkedid),
                ("Interface", f"PJSIP/{call.extension}"),
                ("MemberName", f"PJSIP/{call.extension}"),
            ]
        return Message((*base, *extra))

    ringing = connected - timedelta(seconds=RING_S)
    return [
        event("QueueCallerJoin", joined, ("Queue", queue), ("Position", "1"), ("Count", "1"), member=False),
        event("AgentCalled", ringing, ("Queue", queue)),
        event(
            "AgentConnect", connected, ("Queue", queue), ("HoldTime", str(HOLD_S)), ("RingTime", str(RING_S))
        ),
        event("VarSet", connected, ("Variable", "MIXMONITOR_FILENAME"), ("Value", path), member=False),
        event(
            "AgentComplete",
            ended,
            ("Queue", queue),
            ("HoldTime", str(HOLD_S)),
            ("TalkTime", str(call.talk_s)),
            ("Reason", "caller"),
        ),
        event("Hangup", ended, ("Cause", "16"), ("Cause-txt", "Normal Clearing"), member=False),
    ]


def _write_recordings(settings: Settings, calls: Sequence[DemoCall]) -> str:
    """Every answered demo call's file in the monitor folder (existing files are kept)."""
    folder = settings.path(settings.storage.monitor_dir)
    cache = settings.path(settings.storage.var_dir) / "demo-audio"
    synthesise = audio.synthesiser()
    speech: dict[str, audio.Speech] = {}
    source = audio.ESPEAK if synthesise is not None else audio.TONE
    for call in calls:
        if call.extension is None:
            continue
        queue = "complaint" if call.inputs[-1] == "2" else "consultation"
        target = Path(folder) / call.recording
        if target.exists():
            continue
        if queue not in speech:
            speech[queue] = audio.dialogue(queue, cache, synthesise)
        audio.write_recording(target, audio.call_wav(speech[queue], call.talk_s))
    return source
