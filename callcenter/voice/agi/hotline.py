"""The ``hotline`` AGI script: run an IVR flow on the channel, log it, hand the call to ``Queue()``.

Only translation happens here: engine actions become AGI commands (STREAM FILE, GET DATA, SET
VARIABLE), the caller's keys become engine input, engine events become timeline entries. The call
is written when it arrives and when it leaves the IVR; the FastAGI thread is not held while the
caller waits in the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from callcenter.db import Database
from callcenter.ivr import engine
from callcenter.ivr.engine import Enqueue, Gather, Hangup, IvrEvent, Play, Rules, Step
from callcenter.ivr.flow import Flow
from callcenter.phone import normalise
from callcenter.services import callers
from callcenter.services.calls import Entry
from callcenter.services.journal import Recorder
from callcenter.voice.agi.protocol import AgiCommandFailed, AgiHangup
from callcenter.voice.agi.server import AgiRequest

log = logging.getLogger(__name__)

SOUNDS_PREFIX = "callcenter"


def sound_file(flow: str, language: str, prompt: str) -> str:
    """A prompt's sound file, relative to Asterisk's sounds folder, without extension."""
    return f"{SOUNDS_PREFIX}/{flow}/{language}/{prompt}"


def entries(request: AgiRequest, events: Sequence[IvrEvent]) -> list[Entry]:
    return [
        Entry(
            key=f"agi:{request.uniqueid}:{event.seq}",
            kind=event.kind,
            at=event.at,
            source="agi",
            node=event.node,
            seq=event.seq,
            data=event.data,
        )
        for event in events
    ]


@dataclass
class HotlineScript:
    flow: Flow
    rules: Rules
    recorder: Recorder
    db: Database
    region: str
    clock: Callable[[], datetime]
    language: str = "zh"

    def __call__(self, request: AgiRequest) -> None:
        agi = request.agi
        request.call_key = agi.get_variable_or_none("CHANNEL(linkedid)") or request.uniqueid
        now = self.clock()
        vip = self._is_vip(request.env.get("agi_callerid", ""))
        step = engine.start(self.flow, self.rules, now, language=self.language, vip=vip)
        self._save(request, now, step.events)  # the call is on record from its first moment
        try:
            agi.answer()
            while (following := self._perform(request, step)) is not None:
                step = following
                request.pending.extend(entries(request, step.events))
        except AgiHangup as exc:
            final = engine.on_hangup(self.flow, step.state, self.clock(), reason=str(exc))
            request.pending.extend(entries(request, final.events))
            self._save(request, self.clock(), ())
            raise
        call_id = self._save(request, self.clock(), ())
        if call_id is not None:
            agi.set_variable("CC_CALL_ID", call_id)

    def _perform(self, request: AgiRequest, step: Step) -> Step | None:
        """Carry out the step's actions; the engine's next step, or None when nothing waits for input."""
        request.notes["node"] = step.state.node or request.notes.get("node")
        gather = step.waiting_for_input
        for action in step.actions:
            if isinstance(action, Play):
                key = self._play(request, action, gather.keys if gather else "")
                if key and gather:  # barge-in: a key pressed during an announcement answers the menu
                    return engine.on_digits(self.flow, self.rules, step.state, key, self.clock())
            elif isinstance(action, Gather):
                digits = self._gather(request, action)
                if digits:
                    return engine.on_digits(self.flow, self.rules, step.state, digits, self.clock())
                return engine.on_no_input(self.flow, self.rules, step.state, self.clock())
            elif isinstance(action, Enqueue):
                # Set before anything else can fail, so Queue() gets the caller's choice.
                request.agi.set_variable("CC_QUEUE", action.queue)
                request.agi.set_variable("CC_BRANCH", action.branch)
                request.agi.set_variable("CC_PRIORITY", action.priority)
            else:
                assert isinstance(action, Hangup)
                request.agi.hangup()
        return None

    def _play(self, request: AgiRequest, action: Play, escape_keys: str) -> str:
        sound = sound_file(self.flow.name, action.language, action.prompt)
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

    def _save(self, request: AgiRequest, now: datetime, events: Sequence[IvrEvent]) -> int | None:
        """Record ``events`` and whatever the session has pending; pending is cleared once handed over."""
        batch = [*entries(request, events), *request.pending]
        request.pending.clear()
        return self.recorder.record(request.seen(now), batch)

    def _is_vip(self, raw_number: str) -> bool:
        number = normalise(raw_number, self.region)
        try:
            with self.db.read() as session:
                return callers.is_vip(session, number.e164)
        except SQLAlchemyError as exc:
            log.warning("VIP lookup unavailable (%s); caller treated as non-VIP", type(exc).__name__)
            return False
