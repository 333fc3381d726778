"""AMI events into the contact record: one Call per Linkedid, one timeline entry per event.

``map_event`` is pure: it turns one AMI event into the call report (``CallSeen`` + ``Entry`` list) and,
for AgentCalled/AgentConnect, a screen-pop payload. ``AmiListener`` writes the report through the
``Recorder`` (database first, spool on outage), publishes the screen-pop on the bus, then hands the
report to its ``on_call_state`` hook (the agents' presence: ``voice/ami/states.py``).

Natural keys are ``ami:<Event>:<Uniqueid>:<Timestamp>`` (Asterisk's ``Timestamp`` has microseconds,
``timestampevents = yes`` in manager.conf), so an event seen twice (a replay, a reconnect overlap) is
ignored by the database, and the summary is recomputed from the whole timeline, so the order in which
events arrive does not matter.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.events import SCREEN_POP, Bus, Event
from callcenter.services import recordings
from callcenter.services.calls import CallSeen, Entry
from callcenter.services.journal import Recorder
from callcenter.voice.ami.protocol import Message, event_time

log = logging.getLogger(__name__)

SOURCE = "ami"
UNKNOWN = "<unknown>"
# Order of kinds that share one instant (the fold sorts by (at, seq)).
SEQ = {
    "queue.join": 10,
    "agent.ringing": 20,
    "agent.missed": 25,
    "agent.connect": 30,
    "recording.started": 35,
    "call.transfer": 40,
    "queue.abandon": 50,
    "queue.exit": 55,
    "agent.complete": 50,
    "call.hangup": 60,
    "cdr": 70,
}
QUEUE_EVENTS = frozenset(
    {
        "QueueCallerJoin",
        "AgentCalled",
        "AgentRingNoAnswer",
        "AgentConnect",
        "AgentComplete",
        "QueueCallerAbandon",
        "QueueCallerLeave",
    }
)
EVENTS = QUEUE_EVENTS | {"BlindTransfer", "AttendedTransfer", "Hangup", "VarSet", "Cdr"}
RECORDING_VARIABLE = "MIXMONITOR_FILENAME"
QUEUE_STATUS_VARIABLE = "QUEUESTATUS"  # set by Queue() when it returns without an agent
VARIABLES = frozenset({RECORDING_VARIABLE, QUEUE_STATUS_VARIABLE})
# Kinds that start or belong to a call this service handles (our queues, our MixMonitor). Other kinds
# (hang-ups, transfers, CDRs) are common to every call on the PBX: they only add to calls on record.
OWN_KINDS = frozenset(
    {"queue.join", "agent.ringing", "agent.missed", "agent.connect", "agent.complete", "queue.abandon"}
)
OWN_KINDS |= {"queue.exit"}
OWN_KINDS |= {recordings.STARTED}


@dataclass(frozen=True)
class Report:
    seen: CallSeen
    entries: tuple[Entry, ...]
    screen_pop: dict[str, Any] | None = None


def _value(message: Message, key: str) -> str:
    value = message.get(key)
    return "" if value == UNKNOWN else value


def _ids(message: Message) -> tuple[str, str]:
    """(linkedid, uniqueid) of the event; transfer events prefix them with the party."""
    for prefix in ("", "Transferer", "OrigTransferer", "Transferee", "SecondTransferer"):
        linkedid = message.get(prefix + "Linkedid")
        if linkedid:
            return linkedid, message.get(prefix + "Uniqueid")
    return "", message.get("Uniqueid") or message.get("UniqueID")


def _member(message: Message) -> dict[str, Any]:
    return {
        "queue": message.get("Queue"),
        "interface": message.get("Interface"),
        "member": message.get("MemberName"),
        "channel": message.get("Channel"),
        "dest_channel": message.get("DestChannel"),
        "dest_uniqueid": message.get("DestUniqueid"),
    }


def _number(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


_Mapped = tuple[str, dict[str, Any]] | None


def _queue_join(message: Message, monitor_dir: str) -> _Mapped:
    return "queue.join", {
        "queue": message.get("Queue"),
        "position": _number(message.get("Position")),
        "channel": message.get("Channel"),
    }


def _agent_called(message: Message, monitor_dir: str) -> _Mapped:
    return "agent.ringing", _member(message)


def _agent_ring_no_answer(message: Message, monitor_dir: str) -> _Mapped:
    ring_ms = _number(message.get("RingTime"))
    return "agent.missed", {
        **_member(message),
        "ring_s": ring_ms / 1000 if isinstance(ring_ms, int) else None,
    }


def _agent_connect(message: Message, monitor_dir: str) -> _Mapped:
    return "agent.connect", {
        **_member(message),
        "holdtime": _number(message.get("HoldTime")),
        "ringtime": _number(message.get("RingTime")),
    }


def _agent_complete(message: Message, monitor_dir: str) -> _Mapped:
    return "agent.complete", {
        **_member(message),
        "holdtime": _number(message.get("HoldTime")),
        "talktime": _number(message.get("TalkTime")),
        "reason": message.get("Reason"),
    }


def _queue_caller_abandon(message: Message, monitor_dir: str) -> _Mapped:
    # Sent for a queue timeout too (then a QUEUESTATUS=TIMEOUT follows): the fold tells them apart.
    return "queue.abandon", {
        "queue": message.get("Queue"),
        "position": _number(message.get("Position")),
        "original_position": _number(message.get("OriginalPosition")),
        "holdtime": _number(message.get("HoldTime")),
        "channel": message.get("Channel"),
    }


def _queue_caller_leave(message: Message, monitor_dir: str) -> _Mapped:
    # Every caller leaves the queue this way; only a key press to the queue's exit context (the
    # callback offer) leaves at priority 0 of the key's extension, with no abandon or QUEUESTATUS.
    if message.get("Priority") != "0":
        return None
    return "queue.exit", {
        "status": "CALLBACK",
        "queue": message.get("Queue"),
        "context": message.get("Context"),
        "exten": message.get("Exten"),
        "channel": message.get("Channel"),
    }


def _blind_transfer(message: Message, monitor_dir: str) -> _Mapped:
    return "call.transfer", {
        "type": "blind",
        "result": message.get("Result"),
        "exten": message.get("Extension"),
        "context": message.get("Context"),
        "channel": message.get("TransfererChannel"),
        "transferee": message.get("TransfereeChannel"),
    }


def _attended_transfer(message: Message, monitor_dir: str) -> _Mapped:
    return "call.transfer", {
        "type": "attended",
        "result": message.get("Result"),
        "exten": message.get("SecondTransfererExten"),
        "context": message.get("SecondTransfererContext"),
        "channel": message.get("OrigTransfererChannel"),
        "target": message.get("TransferTargetChannel") or message.get("SecondTransfererChannel"),
        "dest_type": message.get("DestType"),
    }


def _hangup(message: Message, monitor_dir: str) -> _Mapped:
    linkedid, uniqueid = _ids(message)
    return "call.hangup", {
        "cause": _number(message.get("Cause")),
        "cause_txt": message.get("Cause-txt"),
        "channel": message.get("Channel"),
        "first_leg": bool(uniqueid) and uniqueid == linkedid,
    }


def _var_set(message: Message, monitor_dir: str) -> _Mapped:
    if message.get("Variable") == QUEUE_STATUS_VARIABLE:
        return "queue.exit", {"status": message.get("Value"), "channel": message.get("Channel")}
    return _recording(message.get("Value"), monitor_dir)


# One mapper per AMI event (Cdr has its own path: it can carry two entries).
MAPPERS: dict[str, Callable[[Message, str], _Mapped]] = {
    "QueueCallerJoin": _queue_join,
    "AgentCalled": _agent_called,
    "AgentRingNoAnswer": _agent_ring_no_answer,
    "AgentConnect": _agent_connect,
    "AgentComplete": _agent_complete,
    "QueueCallerAbandon": _queue_caller_abandon,
    "QueueCallerLeave": _queue_caller_leave,
    "BlindTransfer": _blind_transfer,
    "AttendedTransfer": _attended_transfer,
    "Hangup": _hangup,
    "VarSet": _var_set,
}


def _entry_data(message: Message, monitor_dir: str) -> _Mapped:
    mapper = MAPPERS.get(message.event)
    return mapper(message, monitor_dir) if mapper is not None else None


def _recording(path: str, monitor_dir: str) -> tuple[str, dict[str, Any]] | None:
    try:
        return recordings.STARTED, recordings.started(recordings.relative_to_monitor(path, monitor_dir))
    except ValueError as exc:
        log.warning("AMI: recording file not registered: %s", exc)
        return None


def _cdr(message: Message, at: datetime, linkedid: str, uniqueid: str, monitor_dir: str) -> list[Entry]:
    stamp = message.get("Timestamp") or message.get("EndTime")
    data = {
        "disposition": message.get("Disposition"),
        "duration": _number(message.get("Duration")),
        "billsec": _number(message.get("BillableSeconds")),
        "channel": message.get("Channel"),
        "dest_channel": message.get("DestinationChannel"),
        "last_app": message.get("LastApplication"),
        "userfield": message.get("UserField"),
    }
    entries = [Entry(f"ami:Cdr:{uniqueid}:{stamp}", "cdr", at, SOURCE, seq=SEQ["cdr"], data=data)]
    userfield = message.get("UserField").strip()
    recording = _recording(userfield, monitor_dir) if userfield else None
    if recording is not None:
        kind, values = recording
        entries.append(Entry(f"ami:Cdr:{uniqueid}:recording", kind, at, SOURCE, seq=SEQ[kind], data=values))
    return entries


def map_event(
    message: Message,
    *,
    monitor_dir: str,
    clock: Callable[[], datetime],
    zone: ZoneInfo | None = None,
    linkedid_of: Callable[[str], str | None] = lambda uniqueid: None,
) -> Report | None:
    """The report for one AMI event, or None for events that do not touch the contact record."""
    name = message.event
    if name not in EVENTS:
        return None
    if name == "VarSet" and message.get("Variable") not in VARIABLES:
        return None
    linkedid, uniqueid = _ids(message)
    if name == "Cdr":
        linkedid = message.get("LinkedID") or message.get("linkedid") or linkedid_of(uniqueid) or ""
    if not linkedid:
        log.debug("AMI %s without a Linkedid ignored", name)
        return None
    at = event_time(message) or _cdr_time(message, zone) or clock()
    if name == "Cdr":
        entries = _cdr(message, at, linkedid, uniqueid, monitor_dir)
    else:
        mapped = _entry_data(message, monitor_dir)
        if mapped is None:
            return None
        kind, data = mapped
        event_name = f"{name}-{QUEUE_STATUS_VARIABLE}" if kind == "queue.exit" and name == "VarSet" else name
        key = f"ami:{event_name}:{uniqueid}:{message.get('Timestamp') or at.isoformat()}"
        entries = [Entry(key, kind, at, SOURCE, seq=SEQ.get(kind, 0), data=data)]
    # The queue events' Channel is the caller's; other events name the caller only on the first leg.
    callers_leg = name in QUEUE_EVENTS or (uniqueid == linkedid and name != "Cdr")
    seen = CallSeen(
        channel="asterisk",
        external_id=linkedid,
        at=at,
        # Only the dialler's originate puts CC_TASK_ID on a channel; otherwise the AMI cannot tell
        # (the AGI report of the call says; "" leaves the record's direction as it is).
        direction="outbound" if message.variables().get("CC_TASK_ID") else "",
        from_raw=_value(message, "CallerIDNum") if callers_leg else "",
        caller_name=_value(message, "CallerIDName") if callers_leg else "",
    )
    pop = None
    if name in ("AgentCalled", "AgentConnect"):
        pop = {
            "agent": message.get("Interface"),
            "interface": message.get("Interface"),
            "member": message.get("MemberName"),
            "linkedid": linkedid,
            "call_id": None,
            "queue": message.get("Queue"),
            "caller": _value(message, "CallerIDNum"),
            "caller_name": _value(message, "CallerIDName"),
            "state": "ringing" if name == "AgentCalled" else "connected",
            "at": at.isoformat(),
        }
    return Report(seen, tuple(entries), pop)


def _cdr_time(message: Message, zone: ZoneInfo | None) -> datetime | None:
    """A Cdr without ``Timestamp``: its EndTime, in the PBX's local time."""
    end = message.get("EndTime")
    if not end or zone is None:
        return None
    try:
        return datetime.fromisoformat(end).replace(tzinfo=zone).astimezone(ZoneInfo("UTC"))
    except ValueError:
        return None


@dataclass
class ListenerStats:
    seen: int = 0
    recorded: int = 0
    spooled: int = 0
    published: int = 0
    foreign: int = 0  # events of calls this service does not handle (internal calls, other apps)


class _Bounded(OrderedDict[str, str]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def remember(self, key: str, value: str) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


@dataclass
class AmiListener:
    """The AMI client's event handler: contact record through the recorder, screen-pops on the bus."""

    recorder: Recorder
    bus: Bus
    monitor_dir: str
    clock: Callable[[], datetime]
    zone: ZoneInfo | None = None
    # Whether the contact record already has this linkedid (the IVR wrote it); None: treat all as ours.
    on_record: Callable[[str], bool] | None = None
    # Told of each recorded report of our calls with its call id (None if spooled): agents' presence.
    on_call_state: Callable[[Report, int | None], None] | None = None
    stats: ListenerStats = field(default_factory=ListenerStats)
    _linkedids: _Bounded = field(default_factory=lambda: _Bounded(10_000))
    _ours: _Bounded = field(default_factory=lambda: _Bounded(10_000))
    _popped: _Bounded = field(default_factory=lambda: _Bounded(2_000))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, message: Message) -> None:
        self.handle(message)

    def handle(self, message: Message) -> None:
        if message.event not in EVENTS:
            return  # the common case: one set lookup
        uniqueid, linkedid = message.get("Uniqueid"), message.get("Linkedid")
        if uniqueid and linkedid:
            with self._lock:
                self._linkedids.remember(uniqueid, linkedid)
        report = map_event(
            message,
            monitor_dir=self.monitor_dir,
            clock=self.clock,
            zone=self.zone,
            linkedid_of=self._linkedid,
        )
        if report is None:
            return
        self.stats.seen += 1
        if not self._is_ours(report):
            self.stats.foreign += 1
            return
        call_id = self.recorder.record(report.seen, report.entries)
        if call_id is None:
            self.stats.spooled += 1
        else:
            self.stats.recorded += 1
        if report.screen_pop is not None:
            self._publish(report, call_id)
        if self.on_call_state is not None:
            try:
                self.on_call_state(report, call_id)
            except Exception:  # the contact record is written; presence must not stop the listener
                log.exception("AMI: agent presence not updated for call %s", report.seen.external_id)

    def _is_ours(self, report: Report) -> bool:
        linkedid = report.seen.external_id
        with self._lock:
            if linkedid in self._ours:
                return True
            own = any(entry.kind in OWN_KINDS for entry in report.entries)
        if not own and self.on_record is not None:
            try:
                own = self.on_record(linkedid)
            except Exception:  # the database is down: keep the event (the spool takes it)
                log.warning("AMI: cannot check whether call %s is on record; keeping its event", linkedid)
                own = True
        if own:
            with self._lock:
                self._ours.remember(linkedid, "")
        return own

    def _linkedid(self, uniqueid: str) -> str | None:
        with self._lock:
            return self._linkedids.get(uniqueid)

    def _publish(self, report: Report, call_id: int | None) -> None:
        key = report.entries[0].key
        with self._lock:
            if key in self._popped:
                return  # the same AMI event again: the agent already got this pop
            self._popped.remember(key, "")
        assert report.screen_pop is not None
        self.bus.publish(Event(SCREEN_POP, {**report.screen_pop, "call_id": call_id}))
        self.stats.published += 1
