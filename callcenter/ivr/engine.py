"""The IVR engine: (flow, state, input, now) → (new state, actions, timeline events). No I/O.

Adapters (FastAGI, TwiML) translate the actions into their protocol and feed the caller's input
back in; the services layer stores the events on the contact record. The state is a small frozen
value that can be carried across HTTP requests (``to_dict``/``from_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from callcenter.exceptions import FlowError
from callcenter.ivr.flow import (
    DEFAULT_QUEUE,
    OPERATOR_QUEUE,
    REPEAT,
    CallbackNode,
    Flow,
    HangupNode,
    HoursNode,
    LanguageNode,
    MenuNode,
    PlayNode,
    QueueNode,
    RecordNode,
)
from callcenter.ivr.hours import BusinessHours

MAX_STEPS_WITHOUT_INPUT = 64


@dataclass(frozen=True)
class Rules:
    """The organisation's settings the engine needs."""

    max_retries: int
    default_queue: str
    vip_priority: int
    hours: BusinessHours
    operator_queue: str = ""  # empty: the default queue


@dataclass(frozen=True)
class Play:
    prompt: str
    text: str
    language: str
    node: str | None = None  # the node it belongs to (where a caller hanging up during it was)


@dataclass(frozen=True)
class Gather:
    """Play ``prompt`` and wait for one key among ``keys`` for ``timeout_s``."""

    node: str
    prompt: str
    text: str
    language: str
    keys: str
    timeout_s: float
    max_digits: int = 1


@dataclass(frozen=True)
class Enqueue:
    queue: str
    branch: str
    priority: int


@dataclass(frozen=True)
class Hangup:
    reason: str


@dataclass(frozen=True)
class Record:
    """Play ``prompt``, then record the caller until silence, ``#`` or ``max_s``; report with on_recorded."""

    node: str
    prompt: str
    text: str
    language: str
    max_s: int
    silence_s: int


Action = Play | Gather | Enqueue | Hangup | Record


@dataclass(frozen=True)
class IvrEvent:
    """A fact for the call's timeline; ``seq`` is unique within one IVR session (its natural key)."""

    seq: int
    kind: str
    node: str | None
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class State:
    flow: str
    version: int
    language: str
    vip: bool = False
    node: str | None = None  # the menu waiting for input, None once finished
    no_input: int = 0
    invalid: int = 0
    seq: int = 0
    path: tuple[str, ...] = ()
    finished: bool = False
    enqueued_at: str | None = None  # ISO time the caller first joined a queue (kept on a queue callback)
    queue: str | None = None  # the queue the caller waited in (a later leg's callback goes back to it)

    def to_dict(self) -> dict[str, Any]:
        data = {**self.__dict__, "path": list(self.path)}
        if data["queue"] is None:
            del data["queue"]  # set only on a later leg; Twilio's tokens stay as short as before
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        return cls(**{**data, "path": tuple(data.get("path", ()))})

    def evolve(self, **changes: Any) -> State:
        """A copy with ``changes``, as ``dataclasses.replace`` makes it in a fifth of the time (the
        engine makes several per step, and a step runs on every webhook and AGI menu)."""
        unknown = changes.keys() - _STATE_FIELDS
        if unknown:
            raise TypeError(f"State has no field {', '.join(sorted(unknown))}")
        copy = object.__new__(State)
        copy.__dict__.update(self.__dict__, **changes)
        return copy


_STATE_FIELDS = frozenset(item.name for item in fields(State))


@dataclass(frozen=True)
class Step:
    state: State
    actions: tuple[Action, ...]
    events: tuple[IvrEvent, ...]

    @property
    def waiting_for_input(self) -> Gather | None:
        last = self.actions[-1] if self.actions else None
        return last if isinstance(last, Gather) else None

    @property
    def waiting_for_recording(self) -> Record | None:
        last = self.actions[-1] if self.actions else None
        return last if isinstance(last, Record) else None


class _Run:
    """Accumulates the actions and events of one step (the event counter goes into the state at the end)."""

    def __init__(self, flow: Flow, rules: Rules, state: State, now: datetime) -> None:
        self.flow, self.rules, self.state, self.now = flow, rules, state, now
        self.seq = state.seq
        self.actions: list[Action] = []
        self.events: list[IvrEvent] = []

    def emit(self, kind: str, node: str | None, **data: Any) -> None:
        self.events.append(IvrEvent(self.seq, kind, node, self.now, data))
        self.seq += 1

    def play(self, prompt: str | None) -> None:
        if prompt:
            lang = self.state.language
            self.actions.append(Play(prompt, self.flow.text(prompt, lang), lang, self.state.node))

    def gather(self, name: str, menu: MenuNode) -> None:
        lang = self.state.language
        keys = "".join(sorted(menu.options))
        self.actions.append(
            Gather(name, menu.prompt, self.flow.text(menu.prompt, lang), lang, keys, menu.timeout_s)
        )

    def finish(self) -> Step:
        return Step(self.state.evolve(seq=self.seq), tuple(self.actions), tuple(self.events))

    def enter(self, name: str) -> Step:
        """Walk from ``name`` through non-waiting nodes until a menu waits or the IVR ends."""
        for _ in range(MAX_STEPS_WITHOUT_INPUT):
            node = self.flow.node(name)
            self.state = self.state.evolve(path=(*self.state.path, name), node=name)
            self.emit("ivr.node", name, type=node.type)
            if isinstance(node, PlayNode):
                self.play(node.prompt)
                name = node.next
            elif isinstance(node, HoursNode):
                is_open = self.rules.hours.is_open(self.now)
                self.emit("ivr.hours", name, open=is_open)
                name = node.open if is_open else node.closed
            elif isinstance(node, MenuNode):
                self.state = self.state.evolve(no_input=0, invalid=0)
                self.gather(name, node)
                return self.finish()
            elif isinstance(node, QueueNode):
                return self._enqueue(name, node)
            elif isinstance(node, LanguageNode):
                self.state = self.state.evolve(language=node.language)
                self.emit("ivr.language", name, language=node.language)
                name = node.next
            elif isinstance(node, CallbackNode):
                self._callback(name, node)
                name = node.next
            elif isinstance(node, RecordNode):
                lang = self.state.language
                text = self.flow.text(node.prompt, lang)
                self.actions.append(Record(name, node.prompt, text, lang, node.max_s, node.silence_s))
                return self.finish()
            else:
                assert isinstance(node, HangupNode)
                self.play(node.prompt)
                self.actions.append(Hangup(node.reason))
                self.emit("ivr.end", name, reason=node.reason)
                self.state = self.state.evolve(node=None, finished=True)
                return self.finish()
        raise FlowError(self.flow.source, name, f"more than {MAX_STEPS_WITHOUT_INPUT} nodes without input")

    def _callback(self, name: str, node: CallbackNode) -> None:
        due = self.now if node.due == "now" else self.rules.hours.next_opening(self.now)
        # The data of a ``callback.requested`` entry (services.callbacks creates the task from it).
        self.emit(
            "callback.requested",
            name,
            callback_kind=node.kind,
            due_at=due.isoformat(),
            queue=self.state.queue or self.rules.default_queue,
            enqueued_at=self.state.enqueued_at,
            language=self.state.language,
            priority=self.rules.vip_priority if self.state.vip else 0,
        )
        self.play(node.prompt)

    def _enqueue(self, name: str, node: QueueNode) -> Step:
        queue = {
            DEFAULT_QUEUE: self.rules.default_queue,
            OPERATOR_QUEUE: self.rules.operator_queue or self.rules.default_queue,
        }.get(node.queue, node.queue)
        priority = self.rules.vip_priority if self.state.vip else 0
        self.play(node.prompt)
        self.actions.append(Enqueue(queue, node.branch, priority))
        self.emit("ivr.route", name, queue=queue, branch=node.branch, priority=priority)
        self.state = self.state.evolve(node=None, finished=True)
        return self.finish()


def _menu(flow: Flow, state: State) -> tuple[str, MenuNode]:
    if state.finished or state.node is None:
        raise FlowError(flow.source, state.node, "input after the IVR finished")
    node = flow.node(state.node)
    if not isinstance(node, MenuNode):
        raise FlowError(flow.source, state.node, "input for a node that does not wait for input")
    return state.node, node


def start(
    flow: Flow,
    rules: Rules,
    now: datetime,
    *,
    language: str | None = None,
    vip: bool = False,
    entry: str | None = None,
    enqueued_at: datetime | None = None,
    queue: str | None = None,
) -> Step:
    """Begin a call at the flow's start node, or at the named ``entry`` point.

    A later leg of a call (after the queue, a callback offer) passes the caller's place in line
    (``enqueued_at``) and ``queue``, so that a callback it books keeps both."""
    lang = language if language in flow.flow.languages else flow.flow.languages[0]
    state = State(
        flow=flow.name,
        version=flow.version,
        language=lang,
        vip=vip,
        enqueued_at=enqueued_at.isoformat() if enqueued_at else None,
        queue=queue or None,
    )
    return _Run(flow, rules, state, now).enter(flow.entry(entry))


def on_recorded(flow: Flow, rules: Rules, state: State, reference: str | None, now: datetime) -> Step:
    """The recording asked for by a ``record`` node ended; ``reference`` names the file (None: nothing)."""
    name = state.node
    node = flow.node(name) if name else None
    if not isinstance(node, RecordNode):
        raise FlowError(flow.source, name, "a recording ended at a node that does not record")
    run = _Run(flow, rules, state, now)
    if reference:
        # The data of a ``recording.started`` entry (services.recordings registers the file from it).
        run.emit("recording.started", name, path=reference, recording_kind="voicemail")
    else:
        run.emit("ivr.record", name, outcome="nothing recorded")
    return run.enter(node.next)


def on_digits(flow: Flow, rules: Rules, state: State, digits: str, now: datetime) -> Step:
    """The caller pressed ``digits`` at the waiting menu."""
    name, menu = _menu(flow, state)
    run = _Run(flow, rules, state, now)
    key = digits[:1]
    target = menu.options.get(key) if key else None
    if target == REPEAT:
        run.emit("ivr.input", name, digits=key, outcome="repeat")
        run.gather(name, menu)
        return run.finish()
    if target is not None:
        run.emit("ivr.input", name, digits=key, outcome="option")
        return run.enter(target)
    invalid = state.invalid + 1
    run.state = run.state.evolve(invalid=invalid)
    run.emit("ivr.input", name, digits=digits[:16], outcome="invalid", attempt=invalid)
    return _retry_or_leave(run, name, menu, invalid, menu.invalid_prompt, menu.on_invalid)


def on_no_input(flow: Flow, rules: Rules, state: State, now: datetime) -> Step:
    """The menu's timeout passed with no key."""
    name, menu = _menu(flow, state)
    run = _Run(flow, rules, state, now)
    count = state.no_input + 1
    run.state = run.state.evolve(no_input=count)
    run.emit("ivr.input", name, digits="", outcome="no_input", attempt=count)
    return _retry_or_leave(run, name, menu, count, menu.no_input_prompt, menu.on_no_input)


def _retry_or_leave(
    run: _Run, name: str, menu: MenuNode, count: int, prompt: str | None, target: str
) -> Step:
    limit = run.rules.max_retries if menu.max_retries is None else menu.max_retries
    if count > limit:
        return run.enter(target)
    run.play(prompt)
    run.gather(name, menu)
    return run.finish()


def on_hangup(
    flow: Flow, state: State, now: datetime, reason: str = "caller hung up", *, node: str | None = None
) -> Step:
    """The caller hung up before leaving the IVR (also during the last announcement): record where.

    ``node`` is where the adapter was (the node of the announcement playing), if it knows better
    than the state, which has already moved on to the node waiting for input.
    """
    node = node or state.node or (state.path[-1] if state.path else None)
    event = IvrEvent(state.seq, "ivr.hangup", node, now, {"reason": reason})
    done = state.evolve(seq=state.seq + 1, finished=True, node=None)
    return Step(done, (), (event,))
