"""AGI scripts that run an IVR flow on the channel, log it, and hand the call back to the dialplan.

Only translation happens here: engine actions become AGI commands (STREAM FILE, GET DATA, RECORD
FILE, SET VARIABLE), the caller's keys become engine input, engine events become timeline entries.
The call is written when it arrives and when it leaves the IVR; the FastAGI thread is not held while
the caller waits in the queue. One ``FlowScript`` class serves every route (``hotline``,
``after-hours``, ``queue-callback``, ``outbound``): they differ in flow, entry point and direction.

Channel variables set for the dialplan (docs/asterisk.md): ``CC_NEXT`` (``queue`` when the caller
goes to ``Queue()``, ``hangup`` when the flow ended the call), ``CC_QUEUE``, ``CC_BRANCH``,
``CC_PRIORITY``, ``CC_QUEUE_TIMEOUT``, ``CC_ENQUEUED_AT`` (epoch seconds the caller first joined a
queue), ``CC_LANGUAGE`` and ``CC_CALL_ID`` (the contact record's key, the call's linkedid: the
record is written by the recorder's writer thread, so no AGI session waits for the database, and the
key is there even while the database is down).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from callcenter.db import Database
from callcenter.ivr import engine
from callcenter.ivr.engine import Enqueue, Gather, Hangup, IvrEvent, Play, Record, Rules, Step
from callcenter.ivr.flow import Flow
from callcenter.phone import normalise
from callcenter.services import callers
from callcenter.services.calls import Entry
from callcenter.services.journal import Recorder
from callcenter.voice.agi.protocol import AgiCommandFailed, AgiHangup
from callcenter.voice.agi.server import AgiRequest

log = logging.getLogger(__name__)

SOUNDS_PREFIX = "callcenter"
NODE = "ivr.node"
QUEUE_EXIT = "queue.exit"
VOICEMAIL_FOLDER = "voicemail"  # under Asterisk's monitor folder
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def sound_file(flow: str, language: str, prompt: str) -> str:
    """A prompt's sound file, relative to Asterisk's sounds folder, without extension."""
    return f"{SOUNDS_PREFIX}/{flow}/{language}/{prompt}"


def voicemail_file(uniqueid: str) -> str:
    """The voicemail's file name relative to the monitor folder, without extension."""
    return f"{VOICEMAIL_FOLDER}/vm-{_UNSAFE.sub('_', uniqueid)[:64]}"


def entries(request: AgiRequest, events: Sequence[IvrEvent], at: datetime | None = None) -> list[Entry]:
    """Timeline entries of this session's engine events (stamped ``at`` when given)."""
    return [
        Entry(
            key=f"{request.session_key}:{event.seq}",
            kind=event.kind,
            at=at or event.at,
            source="agi",
            node=event.node,
            seq=event.seq,
            data=event.data,
        )
        for event in events
    ]


def _epoch(value: str | None) -> datetime | None:
    """A channel variable holding epoch seconds (``${EPOCH}``), or None if unset or garbage."""
    try:
        return datetime.fromtimestamp(float(value), UTC) if value else None
    except (ValueError, OverflowError, OSError):
        return None


@dataclass
class _Progress:
    """The session's latest engine step (a hang-up may come while the adapter is mid-step), and the
    engine's events the caller has not reached yet.

    The engine walks ahead to the next menu at once; the caller hears one prompt after the other.
    A node's ``ivr.node`` entry is written when its first prompt starts (silent nodes: when the prompt
    before them ended), stamped with that moment; a node the caller hung up before never is. Other
    facts (a route, a callback booked) are written with the node they follow, or at the end.
    """

    step: Step
    unreached: list[IvrEvent] = field(default_factory=list)

    def advance(self, step: Step) -> None:
        self.step = step
        self.unreached.extend(step.events)

    def reach(self, node: str | None) -> list[IvrEvent]:
        """The events up to ``node``'s ``ivr.node`` and the facts after it (all of them for None)."""
        events = self.unreached
        if node is None:
            count = len(events)
        else:
            at = next((i for i, e in enumerate(events) if e.kind == NODE and e.node == node), None)
            count = 0 if at is None else at + 1
            while count < len(events) and events[count].kind != NODE:
                count += 1
        reached, self.unreached = events[:count], events[count:]
        return reached

    def facts(self) -> list[IvrEvent]:
        """What was decided but not reached when the caller hung up: the facts, not the nodes."""
        kept = [event for event in self.unreached if event.kind != NODE]
        self.unreached = []
        return kept


@dataclass
class FlowScript:
    flow: Flow
    rules: Rules
    recorder: Recorder
    db: Database
    region: str
    clock: Callable[[], datetime]
    language: str = "zh"
    entry: str | None = None  # the flow's entry point; None: its start
    # agi_arg_1 → entry point, e.g. {"queue-timeout": "missed"} for after-hours,queue-timeout
    entry_by_argument: Mapping[str, str] = field(default_factory=dict)
    direction: str = "inbound"
    queue_exit: str | None = None  # the queue exit this script follows, e.g. CALLBACK for queue-callback
    queue_timeout_s: int = 600
    asterisk_monitor_dir: str = "/var/spool/asterisk/monitor"
    vips: callers.VipDirectory | None = None  # shared by a process's scripts; made here if not given

    def __post_init__(self) -> None:
        if self.vips is None:
            self.vips = callers.VipDirectory(self.db, self.clock)

    def __call__(self, request: AgiRequest) -> None:
        agi = request.agi
        request.call_key = agi.get_variable_or_none("CHANNEL(linkedid)") or request.uniqueid
        request.direction = self.direction
        argument = request.env.get("agi_arg_1", "")
        leg = self._leg(request, self.entry_by_argument.get(argument, self.entry))
        now = self.clock()
        vip = self._is_vip(request.env.get("agi_callerid", ""))
        step = engine.start(self.flow, self.rules, now, vip=vip, **leg)
        progress = _Progress(step, list(step.events))
        exit_status = self.queue_exit or (argument.upper() if argument in self.entry_by_argument else None)
        if exit_status:  # how the caller left Queue(): this session is the dialplan's answer to it
            data = {"status": exit_status, "queue": leg["queue"], "script": request.script}
            request.pending.append(
                Entry(f"{request.session_key}:exit", QUEUE_EXIT, now, "agi", None, 0, data)
            )
        # On record from its first moment, without waiting: the writer often merges this report with
        # the session's final one (services/journal.py), and the caller hears the greeting meanwhile.
        self._save(request, now)
        try:
            agi.answer()
            while (following := self._perform(request, progress)) is not None:
                progress.advance(following)
            self._reach(request, progress, None)
        except AgiHangup as exc:
            moment = self.clock()
            final = engine.on_hangup(
                self.flow, progress.step.state, moment, reason=str(exc), node=request.notes.get("node")
            )
            request.pending.extend(entries(request, [*progress.facts(), *final.events], moment))
            self._save(request, moment)
            raise
        # Handed to the writer, not awaited: the caller goes on to Queue() without waiting for the
        # database, and the record is written (or spooled) by the writer, merged with the arrival.
        self._save(request, self.clock())
        if self._enqueued(progress.step):
            agi.set_variable("CC_CALL_ID", request.call_key)

    def _leg(self, request: AgiRequest, entry: str | None) -> dict[str, Any]:
        """Where the flow starts, and what a later leg of the call keeps from the hotline's session:
        the language, the place in line and (after the queue) the caller's queue."""
        agi = request.agi
        leg: dict[str, Any] = {"entry": entry, "language": self.language, "enqueued_at": None, "queue": None}
        if entry is not None or self.direction == "outbound":
            leg["language"] = agi.get_variable_or_none("CC_LANGUAGE") or self.language
            leg["enqueued_at"] = _epoch(agi.get_variable_or_none("CC_ENQUEUED_AT"))
        if entry is not None and self.direction != "outbound":
            leg["queue"] = agi.get_variable_or_none("CC_QUEUE")  # a callback goes back to that queue
        if self.direction == "outbound":
            request.notes["to"] = agi.get_variable_or_none("CC_NUMBER") or ""
            leg["entry"] = agi.get_variable_or_none("CC_FLOW_ENTRY") or entry
        return leg

    @staticmethod
    def _enqueued(step: Step) -> bool:
        return any(isinstance(action, Enqueue) for action in step.actions)

    def _perform(self, request: AgiRequest, progress: _Progress) -> Step | None:
        """Carry out the step's actions; the engine's next step, or None when nothing waits for input."""
        step = progress.step
        request.notes["node"] = step.state.node or request.notes.get("node")
        gather = step.waiting_for_input
        for action in step.actions:
            self._reach(request, progress, getattr(action, "node", None))
            if isinstance(action, Play):
                request.notes["node"] = action.node or request.notes.get("node")
                key = self._play(request, action.language, action.prompt, gather.keys if gather else "")
                if key and gather:  # barge-in: a key pressed during an announcement answers the menu
                    return engine.on_digits(self.flow, self.rules, step.state, key, self.clock())
            elif isinstance(action, Gather):
                request.notes["node"] = action.node
                digits = self._gather(request, action)
                if digits:
                    return engine.on_digits(self.flow, self.rules, step.state, digits, self.clock())
                return engine.on_no_input(self.flow, self.rules, step.state, self.clock())
            elif isinstance(action, Record):
                request.notes["node"] = action.node
                return self._record(request, progress, action)
            elif isinstance(action, Enqueue):
                self._enqueue(request, step, action)
            else:
                assert isinstance(action, Hangup)
                request.agi.set_variable("CC_NEXT", "hangup")  # the dialplan must not queue this caller
                request.agi.hangup()
        return None

    def _enqueue(self, request: AgiRequest, step: Step, action: Enqueue) -> None:
        # CC_QUEUE first, before anything else can fail, so Queue() gets the caller's choice.
        agi = request.agi
        agi.set_variable("CC_QUEUE", action.queue)
        agi.set_variable("CC_NEXT", "queue")
        agi.set_variable("CC_BRANCH", action.branch)
        agi.set_variable("CC_PRIORITY", action.priority)
        agi.set_variable("CC_QUEUE_TIMEOUT", self.queue_timeout_s)
        kept = step.state.enqueued_at
        joined = datetime.fromisoformat(kept) if kept else self.clock()
        agi.set_variable("CC_ENQUEUED_AT", f"{joined.timestamp():.3f}")
        agi.set_variable("CC_LANGUAGE", step.state.language)

    def _record(self, request: AgiRequest, progress: _Progress, action: Record) -> Step:
        """Voicemail: the prompt, then RECORD FILE with a beep; a hang-up keeps what was recorded."""
        self._play(request, action.language, action.prompt, "")
        name = voicemail_file(request.uniqueid)
        reference: str | None = f"{name}.wav"
        state = progress.step.state
        try:
            request.agi.record_file_ex(
                f"{self.asterisk_monitor_dir.rstrip('/')}/{name}", "wav", "#", action.max_s, action.silence_s
            )
        except AgiHangup:  # the recording is kept: its facts are written with the hang-up
            progress.advance(engine.on_recorded(self.flow, self.rules, state, reference, self.clock()))
            raise
        except AgiCommandFailed as exc:
            log.warning("call %s: voicemail could not be recorded (%s)", request.call_key, exc)
            reference = None
        return engine.on_recorded(self.flow, self.rules, state, reference, self.clock())

    def _play(self, request: AgiRequest, language: str, prompt: str, escape_keys: str) -> str:
        sound = sound_file(self.flow.name, language, prompt)
        try:
            return request.agi.stream_file_ex(sound, escape_keys)
        except AgiCommandFailed as exc:
            log.warning("call %s: could not play %s (%s); going on", request.call_key, sound, exc)
            return ""

    def _gather(self, request: AgiRequest, action: Gather) -> str:
        sound = sound_file(self.flow.name, action.language, action.prompt)
        try:
            digits, _timed_out = request.agi.get_data_ex(
                sound, int(action.timeout_s * 1000), action.max_digits
            )
        except AgiCommandFailed as exc:
            log.warning(
                "call %s: menu prompt %s failed (%s); counted as no input", request.call_key, sound, exc
            )
            return ""
        return digits

    def _reach(self, request: AgiRequest, progress: _Progress, node: str | None) -> None:
        """The caller reaches ``node`` now (None: the end of what the engine walked through)."""
        reached = progress.reach(node)
        if reached:
            request.pending.extend(entries(request, reached, self.clock()))

    def _save(self, request: AgiRequest, now: datetime) -> None:
        """Hand what the session has pending to the writer (the call, at least); pending is cleared."""
        batch = list(request.pending)
        request.pending.clear()
        self.recorder.submit(request.seen(now), batch)

    def _is_vip(self, raw_number: str) -> bool:
        assert self.vips is not None  # set in __post_init__
        return self.vips.is_vip(normalise(raw_number, self.region).e164)
