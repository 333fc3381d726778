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
from callcenter.voice.agi.protocol import AgiHangup
from callcenter.voice.agi.server import AgiRequest

log = logging.getLogger(__name__)

SOUNDS_PREFIX = "callcenter"


def sound_file(flow: str, language: str, prompt: str) -> str:
    """Where ``render-prompts`` puts a prompt, relative to Asterisk's sounds folder (no extension)."""
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

    def __call__(self, request: AgiRequest) -> None:
        agi = request.agi
        request.call_key = agi.get_variable_or_none("CHANNEL(linkedid)") or request.uniqueid
        now = self.clock()
        step = engine.start(self.flow, self.rules, now, vip=self._is_vip(request.env.get("agi_callerid", "")))
        self._save(request, now, step.events)  # the call is on record from its first moment
        unsaved: list[IvrEvent] = []
        try:
            agi.answer()
            while True:
                request.notes["node"] = step.state.node or request.notes.get("node")
                following = self._perform(request, step)
                if following is None:
                    break
                step = following
                unsaved.extend(step.events)
        except AgiHangup as exc:
            final = engine.on_hangup(self.flow, step.state, self.clock(), reason=str(exc))
            self._save(request, self.clock(), [*unsaved, *final.events])
            raise
        call_id = self._save(request, self.clock(), unsaved)
        if call_id is not None:
            agi.set_variable("CC_CALL_ID", call_id)

    def _perform(self, request: AgiRequest, step: Step) -> Step | None:
        """Carry out the step's actions; the engine's next step, or None when nothing waits for input."""
        agi = request.agi
        gather = step.waiting_for_input
        escape_keys = gather.keys if gather else ""
        for action in step.actions:
            if isinstance(action, Play):
                key = agi.stream_file_ex(
                    sound_file(self.flow.name, action.language, action.prompt), escape_keys
                )
                if key and gather:  # barge-in: a key pressed during an announcement answers the menu
                    return engine.on_digits(self.flow, self.rules, step.state, key, self.clock())
            elif isinstance(action, Gather):
                prompt = sound_file(self.flow.name, action.language, action.prompt)
                digits, _timed_out = agi.get_data_ex(prompt, int(action.timeout_s * 1000), action.max_digits)
                if digits:
                    return engine.on_digits(self.flow, self.rules, step.state, digits, self.clock())
                return engine.on_no_input(self.flow, self.rules, step.state, self.clock())
            elif isinstance(action, Enqueue):
                # Set before anything else can fail, so Queue() gets the caller's choice.
                agi.set_variable("CC_QUEUE", action.queue)
                agi.set_variable("CC_BRANCH", action.branch)
                agi.set_variable("CC_PRIORITY", action.priority)
            else:
                assert isinstance(action, Hangup)
                agi.hangup()
        return None

    def _save(self, request: AgiRequest, now: datetime, events: Sequence[IvrEvent]) -> int | None:
        return self.recorder.record(request.seen(now), entries(request, events))

    def _is_vip(self, raw_number: str) -> bool:
        number = normalise(raw_number, self.region)
        try:
            with self.db.sessions() as session:
                return callers.is_vip(session, number.e164)
        except SQLAlchemyError as exc:
            log.warning("VIP lookup unavailable (%s); caller treated as non-VIP", type(exc).__name__)
            return False
