"""The Twilio webhooks as use cases: the same flows and engine as on Asterisk, answered as TwiML.

``TwilioVoice`` knows nothing of Flask: ``web/twilio.py`` checks the signature and hands over the
posted form (a plain mapping) and the signed ``s`` token of the URL. Each method returns the TwiML
document to answer.

State across requests: the engine's ``State`` travels in the URLs we give Twilio (the Gather and
Record actions, the Enqueue action and wait URLs), as a compact base64url JSON token. Twilio signs the
full URL, query included, so a token cannot be altered without the account's auth token. A replayed
webhook carries the same token and the same ``CallSid``, so it computes the same step: its timeline
entries have the same natural keys (``twilio:<CallSid>:<seq>``, or ``twilio:<CallSid>:<session>:<seq>``
for a second IVR session of the call such as the queue callback) and change nothing.

Timeline entries written here reuse the kinds of the AMI listener, so the same reducers derive the
call's columns: ``queue.join`` (at ``<Enqueue>``), ``agent.connect`` (the dequeue webhook),
``agent.complete`` (the bridge ended), ``queue.abandon`` (hung up in the queue), ``call.hangup``
(a final call status). Other statuses are kept as ``call.status`` entries, which no reducer reads: a
``ringing`` after ``completed`` changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import and_, literal, select
from sqlalchemy.exc import SQLAlchemyError

from callcenter.db import Database
from callcenter.events import SCREEN_POP, Bus, Event
from callcenter.exceptions import FlowError
from callcenter.ivr import engine
from callcenter.ivr.engine import IvrEvent, Rules, State, Step
from callcenter.ivr.flow import Flow
from callcenter.models import Agent, Call, CallbackTask, CallEvent
from callcenter.phone import normalise
from callcenter.services import callers
from callcenter.services.agent_states import Background, CallPresence
from callcenter.services.calls import CallSeen, Entry
from callcenter.services.journal import Recorder
from callcenter.voice.twilio import twiml
from callcenter.voice.twilio.twiml import StepLinks, Voice

log = logging.getLogger(__name__)

CHANNEL = "twilio"
SOURCE = "twilio"
HOTLINE = "hotline"
OUTBOUND = "outbound"
# The waiting room offers "press 1 for a callback" once the caller has waited this long.
QUEUE_OFFER_AFTER_S = 60
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
# How far back the dequeue of an agent's leg is looked for when its recording arrives.
RECORDING_LOOKBACK = timedelta(days=2)
WAITING_LOOKBACK = timedelta(hours=12)
# How long the dequeue webhook waits for the call's id for its screen-pop. Caller and agent hear
# nothing until it answers, and Twilio gives up after 15 s; without the id the screen-pop finds the
# call by its CallSid, and the report is written (or spooled) all the same.
DEQUEUE_WAIT_S = 2.0


class BadWebhook(ValueError):
    """The request cannot be acted on (bad token, wrong node, unknown task): answered with 400/404."""


def encode_token(data: Mapping[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise BadWebhook(f"unreadable state token: {exc}") from exc
    if not isinstance(data, dict):
        raise BadWebhook("unreadable state token")
    return data


def _state(token: Mapping[str, Any]) -> State:
    try:
        return State.from_dict(dict(token["s"]))
    except (KeyError, TypeError) as exc:
        raise BadWebhook(f"bad engine state in token: {exc}") from exc


@dataclass(frozen=True)
class Urls:
    """Absolute webhook URLs under the public base (what Twilio requests, and what it signs)."""

    base: str

    def __call__(self, path: str, **query: str | int) -> str:
        url = f"{self.base.rstrip('/')}/twilio/{path}"
        return f"{url}?{urlencode(query)}" if query else url


@functools.lru_cache(maxsize=4096)
def _waiting_links(urls: Urls, session: str, state: State, node: str) -> StepLinks:
    """The links of an IVR session waiting for input at ``node``: the same for every caller at the same
    place, so built (token and URLs) once per place."""
    token = encode_token({"k": session, "s": state.to_dict()})
    return StepLinks(
        gather=urls(f"gather/{node}", s=token),
        recorded=urls(f"recorded/{node}", s=token),
        recording_status=urls("recording", kind="voicemail"),
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


class TwilioVoice:
    """The hotline, the outbound flow, the queue and the agents on Twilio."""

    def __init__(
        self,
        *,
        flows: Mapping[str, Flow],
        rules: Rules,
        recorder: Recorder,
        db: Database,
        clock: Callable[[], datetime],
        region: str,
        public_base_url: str,
        voice: Voice,
        bus: Bus,
        language: str = "zh",
        record_calls: bool = True,
        queue_offer_after_s: int = QUEUE_OFFER_AFTER_S,
        vips: callers.VipDirectory | None = None,
        presence: CallPresence | None = None,
    ) -> None:
        self.flows = flows
        self.rules = rules
        self.recorder = recorder
        self.db = db
        self.clock = clock
        self.region = region
        self.urls = Urls(public_base_url)
        self.voice = voice
        self.bus = bus
        self.language = language
        self.record_calls = record_calls
        self.queue_offer_after_s = queue_offer_after_s
        self.vips = vips or callers.VipDirectory(db, clock)
        self.presence = presence  # the agents' presence follows the calls (no queue pause on Twilio)
        self.presence_jobs = Background("twilio-presence")

    # --- the IVR ---------------------------------------------------------------------------------

    def incoming(self, form: Mapping[str, str]) -> str:
        """``POST /twilio/voice``: a call to our number starts the hotline."""
        now = self.clock()
        flow = self.flows[HOTLINE]
        step = engine.start(flow, self.rules, now, language=self.language, vip=self._is_vip(form.get("From")))
        return self._answer(form, flow, step, "", now)

    def outbound(self, task_id: int, form: Mapping[str, str]) -> str:
        """``POST /twilio/outbound/<task>``: the callee of ``calls.create`` answered."""
        now = self.clock()
        with self.db.read() as session:
            task = session.get(CallbackTask, task_id)
            if task is None:
                raise BadWebhook(f"no callback task {task_id}")
            kind, language, priority, enqueued = task.kind, task.language, task.priority, task.enqueued_at
        task_entry = Entry(
            self._key(form, "task"), "call.task", now, SOURCE, None, 0, {"task": task_id, "task_kind": kind}
        )
        answered_by = form.get("AnsweredBy", "")
        if answered_by.startswith(("machine", "fax")):
            end = Entry(
                self._key(form, "machine"), "ivr.end", now, SOURCE, None, 0, {"reason": "answering_machine"}
            )
            self._record(form, [task_entry, end], now)
            return twiml.to_xml(twiml.hangup())
        flow = self.flows[OUTBOUND]
        entry = "survey" if kind == "survey" and "survey" in flow.flow.entries else None
        step = engine.start(
            flow, self.rules, now, language=language, vip=priority > 0, entry=entry, enqueued_at=enqueued
        )
        return self._answer(form, flow, step, "", now, extra=[task_entry])

    def gather(self, node: str, token: str, form: Mapping[str, str]) -> str:
        """``POST /twilio/gather/<node>``: the caller pressed a key at the menu, or nothing (empty Digits)."""
        data, state, flow = self._waiting_at(node, token)
        now = self.clock()
        digits = form.get("Digits", "")
        try:
            if digits:
                step = engine.on_digits(flow, self.rules, state, digits, now)
            else:
                step = engine.on_no_input(flow, self.rules, state, now)
        except FlowError as exc:
            raise BadWebhook(str(exc)) from exc
        return self._answer(form, flow, step, str(data.get("k", "")), now)

    def _waiting_at(self, node: str, token: str) -> tuple[dict[str, Any], State, Flow]:
        """The IVR session a step's token carries, which must be waiting at ``node``."""
        data = decode_token(token)
        state = _state(data)
        if state.node != node:
            raise BadWebhook(f"the token waits at {state.node!r}, not at {node!r}")
        return data, state, self._flow(state)

    def recorded(self, node: str, token: str, form: Mapping[str, str]) -> str:
        """``POST /twilio/recorded/<node>``: the voicemail ``<Record>`` ended (or recorded nothing)."""
        data, state, flow = self._waiting_at(node, token)
        now = self.clock()
        sid = form.get("RecordingSid", "")
        reference = sid if sid and (_int(form.get("RecordingDuration")) or 0) > 0 else None
        try:
            step = engine.on_recorded(flow, self.rules, state, reference, now)
        except FlowError as exc:
            raise BadWebhook(str(exc)) from exc
        return self._answer(form, flow, step, str(data.get("k", "")), now)

    # --- the queue -------------------------------------------------------------------------------

    def queue_wait(self, token: str, form: Mapping[str, str]) -> str:
        """``POST /twilio/queue/wait``: the waiting room, requested again after each round (no writes)."""
        data = decode_token(token)
        waited = _int(form.get("QueueTime")) or 0
        offer = waited >= self.queue_offer_after_s and "queue_callback" in self.flows[HOTLINE].flow.entries
        response = twiml.waiting_room(
            self.voice,
            str(data.get("l") or self.language),
            _int(form.get("QueuePosition")),
            offer_callback=offer,
            callback_url=self.urls("queue/callback", s=token),
        )
        return twiml.to_xml(response)

    def queue_callback(self, token: str, form: Mapping[str, str]) -> str:
        """``POST /twilio/queue/callback``: the caller answered the callback offer: ``1`` leaves the queue."""
        decode_token(token)
        if form.get("Digits", "")[:1] == "1":
            return twiml.to_xml(twiml.leave_queue())  # the Enqueue action (queue/done) takes over
        return twiml.to_xml(twiml.back_to_waiting(self.urls("queue/wait", s=token)))

    def queue_done(self, token: str, form: Mapping[str, str]) -> str:
        """``POST /twilio/queue/done``: the Enqueue action, when the caller leaves the queue (any reason)."""
        data = decode_token(token)
        now = self.clock()
        result = form.get("QueueResult", "")
        queue = str(data.get("q") or "")
        facts = {
            "channel": form.get("CallSid", ""),
            "queue": queue,
            "result": result,
            "holdtime": _int(form.get("QueueTime")),
        }
        if result == "bridged":  # the agent's side ended the bridge and the caller is still here
            entry = Entry(self._key(form, "queue:bridged"), "agent.complete", now, SOURCE, None, 0, facts)
            self._record(form, [entry], now)
            return twiml.to_xml(twiml.hangup())
        if result == "hangup":
            entry = Entry(self._key(form, "queue:hangup"), "queue.abandon", now, SOURCE, None, 0, facts)
            self._record(form, [entry], now)
            return twiml.to_xml(twiml.empty())
        # As on Asterisk (QUEUESTATUS, the key-press exit): the fold tells a callback and a full
        # queue from a caller who hung up; other results are kept without an outcome.
        status = QUEUE_EXITS.get(result, (result or "unknown").upper())
        left = Entry(
            self._key(form, f"queue:{result or 'unknown'}"),
            "queue.exit",
            now,
            SOURCE,
            None,
            0,
            {**facts, "status": status},
        )
        if result == "leave":
            entry_point = "queue_callback"  # pressed 1 in the waiting room: called back in turn
        elif result in ("queue-full", "system-error", "error"):
            entry_point = "missed"  # the queue gave up on the caller, as Queue() timing out on Asterisk
        else:  # redirected, or something new
            self._record(form, [left], now)
            return twiml.to_xml(twiml.empty())
        flow = self.flows[HOTLINE]
        if entry_point not in flow.flow.entries:
            self._record(form, [left], now)
            return twiml.to_xml(twiml.hangup())
        enqueued = data.get("e")
        step = engine.start(
            flow,
            self.rules,
            now,
            language=str(data.get("l") or self.language),
            vip=bool(data.get("v")),
            entry=entry_point,
            enqueued_at=datetime.fromisoformat(enqueued) if enqueued else None,
            queue=queue or None,
        )
        return self._answer(form, flow, step, entry_point, now, extra=[left])

    # --- agents ----------------------------------------------------------------------------------

    def agent(self, form: Mapping[str, str]) -> str:
        """``POST /twilio/agent`` (the TwiML App's voice URL): the agent takes the next caller.

        The agent is found by the Client identity (``From=client:<identity>``) or by the phone number
        they call from, both kept in ``Agent.twilio_identity``. VIP callers wait in their own queue
        (``twiml.vip_queue_name``); the agent dials the queue of the most urgent caller waiting in one
        of their queues (highest priority, then longest wait), or their first queue.
        """
        caller = form.get("From", "")
        identity = caller.removeprefix("client:")
        number = normalise(caller, self.region).e164 if not caller.startswith("client:") else None
        with self.db.read() as session:
            candidates = [value for value in (identity, number) if value]
            agent = session.execute(
                select(Agent).where(Agent.twilio_identity.in_(candidates), Agent.active.is_(True))
            ).scalar_one_or_none()
            if agent is None:
                log.warning("twilio: %r is not an active agent; call refused", caller[:64])
                return twiml.to_xml(twiml.hangup())
            agent_id = agent.id
            names = [queue.name for queue in agent.queues] or [self.rules.default_queue]
            waiting = session.execute(
                select(Call.queue_name, Call.priority)
                .where(
                    Call.channel == CHANNEL,
                    Call.disposition == "queued",
                    Call.ended_at.is_(None),
                    Call.queue_name.in_(names),
                    Call.started_at >= self.clock() - WAITING_LOOKBACK,
                )
                .order_by(Call.priority.desc(), Call.started_at, Call.id)
                .limit(1)
            ).first()
        queue = twiml.vip_queue_name(waiting[0], waiting[1]) if waiting else names[0]
        response = twiml.agent_dial(
            queue,
            dequeued_url=self.urls("dequeued", agent=agent_id, q=queue),
            record=self.record_calls,
            recording_status=self.urls("recording", kind="call"),
        )
        return twiml.to_xml(response)

    def dequeued(self, agent_id: int, queue_name: str, form: Mapping[str, str]) -> str:
        """``POST /twilio/dequeued``: a waiting caller is being connected to an agent (screen-pop)."""
        now = self.clock()
        with self.db.read() as session:
            agent = session.get(Agent, agent_id)
            if agent is None:
                raise BadWebhook(f"no agent {agent_id}")
            identity, name = agent.twilio_identity or "", agent.name
        queue, _priority = twiml.queue_and_priority(queue_name)
        call_sid, agent_leg = form.get("CallSid", ""), form.get("DequeingCallSid", "")
        interface = identity if identity.startswith("+") else f"client:{identity}"
        data = {
            "channel": call_sid,
            "dest_channel": agent_leg,
            "interface": interface,
            "member": name,
            "agent_id": agent_id,
            "queue": queue,
            "holdtime": _int(form.get("QueueTime")),
        }
        entry = Entry(self._key(form, f"connect:{agent_leg}"), "agent.connect", now, SOURCE, None, 0, data)
        call_id = self._record_and_wait(form, [entry], now)  # the screen-pop names the call
        self._presence_later(
            lambda presence: presence.connected(
                CHANNEL, call_sid, call_id=call_id, agent_id=agent_id, interface=""
            )
        )
        self.bus.publish(
            Event(
                SCREEN_POP,
                {
                    "agent": agent_id,
                    "agent_interface": interface,
                    "call_id": call_id,
                    "call_sid": call_sid,
                    "linkedid": call_sid,
                    "queue": queue,
                    "wait_s": data["holdtime"],
                    "state": "connected",
                },
            )
        )
        return twiml.to_xml(twiml.empty())

    # --- callbacks -------------------------------------------------------------------------------

    def status(self, form: Mapping[str, str]) -> None:
        """``POST /twilio/status``: a call status callback (duplicated and out of order at times)."""
        if form.get("From", "").startswith("client:"):
            return  # an agent's own leg (TwiML App): it is on the caller's record through the dequeue
        now = self.clock()
        status = form.get("CallStatus", "")
        at = _timestamp(form.get("Timestamp")) or now
        data: dict[str, Any] = {"status": status, "duration": _int(form.get("CallDuration"))}
        if form.get("AnsweredBy"):
            data["answered_by"] = form["AnsweredBy"]
        entries = [Entry(self._key(form, f"status:{status}"), "call.status", at, SOURCE, None, 0, data)]
        if status in FINAL_STATUSES:
            entries.append(Entry(self._key(form, "hangup"), "call.hangup", at, SOURCE, None, 0, data))
            if status == "completed":
                entries.extend(self._hangup_in_ivr(form, at))
        self._record(form, entries, now)
        if status in FINAL_STATUSES:  # the call's agent (since its dequeue) goes to wrap-up
            call_sid = form.get("CallSid", "")
            self._presence_later(lambda presence: presence.ended(CHANNEL, call_sid, call_id=None))

    def recording(self, kind: str, form: Mapping[str, str]) -> int | None:
        """``POST /twilio/recording``: a recording is ready (or failed); registers the Recording row.

        A voicemail's ``CallSid`` is the caller's call. A dual-channel recording of the agent's
        ``<Dial>`` names the agent's leg: the caller's call is the one dequeued by that leg.
        """
        now = self.clock()
        sid, recording_sid = form.get("CallSid", ""), form.get("RecordingSid", "")
        if not recording_sid:
            raise BadWebhook("no RecordingSid")
        call_sid = self._caller_of(sid, now) if kind == "call" else sid
        if call_sid is None:
            log.error("twilio: recording %s of unknown call %s; not registered", recording_sid, sid)
            return None
        status = form.get("RecordingStatus", "completed")
        data = {
            "path": recording_sid,
            "recording_kind": kind if kind in ("call", "voicemail") else "call",
            "duration_s": _int(form.get("RecordingDuration")),
            "channels": _int(form.get("RecordingChannels")) or 1,
            "leg": sid,
            "status": status,
        }
        event_kind = "recording.started" if status == "completed" else "recording.failed"
        key = f"twilio:{call_sid}:recording:{recording_sid}"
        seen = CallSeen(channel=CHANNEL, external_id=call_sid, at=now)
        return self.recorder.record(seen, [Entry(key, event_kind, now, SOURCE, None, 0, data)])

    def fallback(self, form: Mapping[str, str], error: BaseException) -> str:
        """When a webhook fails: the caller still reaches an agent (default queue, branch ``error``)."""
        now = self.clock()
        queue = self.rules.default_queue
        data = {"queue": queue, "branch": "error", "priority": 0, "error": type(error).__name__}
        entry = Entry(self._key(form, "fallback"), "ivr.fallback", now, SOURCE, None, 0, data)
        try:
            self.recorder.submit(self._seen(form, now), [entry])
        except Exception:
            log.exception("twilio: the fallback of call %s could not be recorded", form.get("CallSid"))
        return twiml.to_xml(twiml.enqueue_only(queue))

    # --- helpers ---------------------------------------------------------------------------------

    def _answer(
        self,
        form: Mapping[str, str],
        flow: Flow,
        step: Step,
        session: str,
        now: datetime,
        *,
        extra: Sequence[Entry] = (),
    ) -> str:
        entries = [*extra, *self._entries(form, session, step.events)]
        links = self._links(form, flow, step, session, now, entries)
        self._record(form, entries, now)
        return twiml.step_xml(flow.name, step.actions, self.voice, links)

    def _links(
        self,
        form: Mapping[str, str],
        flow: Flow,
        step: Step,
        session: str,
        now: datetime,
        entries: list[Entry],
    ) -> StepLinks:
        state = step.state
        gather, record = step.waiting_for_input, step.waiting_for_recording
        if gather is not None or record is not None:
            node = gather.node if gather is not None else record.node if record is not None else ""
            return _waiting_links(self.urls, session, state, node)
        enqueue = next((action for action in step.actions if isinstance(action, engine.Enqueue)), None)
        if enqueue is None:
            return StepLinks()
        joined = state.enqueued_at or now.isoformat()
        queue_token = encode_token(
            {
                "k": session,
                "f": flow.name,
                "q": enqueue.queue,
                "b": enqueue.branch,
                "p": enqueue.priority,
                "l": state.language,
                "v": state.vip,
                "e": joined,
            }
        )
        data = {
            "channel": form.get("CallSid", ""),
            "queue": enqueue.queue,
            "priority": enqueue.priority,
            "twilio_queue": twiml.vip_queue_name(enqueue.queue, enqueue.priority),
        }
        entries.append(
            Entry(self._key(form, f"{session or 'ivr'}:join"), "queue.join", now, SOURCE, None, 0, data)
        )
        return StepLinks(
            enqueue_action=self.urls("queue/done", s=queue_token),
            enqueue_wait=self.urls("queue/wait", s=queue_token),
        )

    def _flow(self, state: State) -> Flow:
        flow = self.flows.get(state.flow)
        if flow is None:
            raise BadWebhook(f"unknown flow {state.flow!r}")
        return flow

    @staticmethod
    def _key(form: Mapping[str, str], suffix: str) -> str:
        return f"twilio:{form.get('CallSid', '')}:{suffix}"

    def _entries(self, form: Mapping[str, str], session: str, events: Sequence[IvrEvent]) -> list[Entry]:
        prefix = f"{session}:" if session else ""
        return [
            Entry(
                key=self._key(form, f"{prefix}{event.seq}"),
                kind=event.kind,
                at=event.at,
                source=SOURCE,
                node=event.node,
                seq=event.seq,
                data=event.data,
            )
            for event in events
        ]

    def _seen(self, form: Mapping[str, str], now: datetime) -> CallSeen:
        direction = "outbound" if form.get("Direction", "").startswith("outbound") else "inbound"
        return CallSeen(
            channel=CHANNEL,
            external_id=form.get("CallSid", ""),
            at=now,
            direction=direction,
            from_raw=form.get("From", ""),
            to_raw=form.get("To", ""),
            caller_name=form.get("CallerName", ""),
        )

    def _record(self, form: Mapping[str, str], entries: Sequence[Entry], now: datetime) -> None:
        """Hand the webhook's entries to the writer; the answer to Twilio does not wait for the database."""
        if not form.get("CallSid"):
            raise BadWebhook("no CallSid")
        self.recorder.submit(self._seen(form, now), entries)

    def _record_and_wait(
        self, form: Mapping[str, str], entries: Sequence[Entry], now: datetime
    ) -> int | None:
        """As ``_record``, waiting up to ``DEQUEUE_WAIT_S`` for the call's id (None if spooled or late)."""
        if not form.get("CallSid"):
            raise BadWebhook("no CallSid")
        return self.recorder.record(self._seen(form, now), entries, timeout_s=DEQUEUE_WAIT_S)

    def _presence_later(self, change: Callable[[CallPresence], object]) -> None:
        """Apply a presence change off the webhook's thread, in order, once the reports handed to the
        writer so far are written (the call must be on record to be found by its CallSid)."""
        presence = self.presence
        if presence is None:
            return

        def run() -> None:
            self.recorder.flush(30.0)
            try:
                change(presence)
            except SQLAlchemyError as exc:
                log.warning("twilio: agent presence not changed: %s", exc)

        self.presence_jobs.submit(run)

    def _hangup_in_ivr(self, form: Mapping[str, str], at: datetime) -> list[Entry]:
        """The caller hung up while the IVR still had them (no route, no end): as ``on_hangup`` would."""
        self.recorder.flush(5.0)  # the IVR's last webhooks are in the record before we look at it
        try:
            with self.db.read() as session:
                row = session.execute(
                    select(Call.disposition, Call.last_node).where(
                        Call.channel == CHANNEL, Call.external_id == form.get("CallSid", "")
                    )
                ).first()
        except SQLAlchemyError as exc:
            log.warning("twilio: cannot tell whether call %s ended in the IVR (%s)", form.get("CallSid"), exc)
            return []
        if row is None or row.disposition != "in_ivr" or row.last_node is None:
            return []
        data = {"reason": "caller hung up"}
        return [Entry(self._key(form, "ivr-hangup"), "ivr.hangup", at, SOURCE, row.last_node, 0, data)]

    def _caller_of(self, leg: str, now: datetime) -> str | None:
        """The caller's CallSid: ``leg`` itself if it is on record, else the call that ``leg`` dequeued."""
        key = literal("twilio:") + Call.external_id + literal(f":connect:{leg}")
        with self.db.read() as session:
            if session.execute(
                select(Call.id).where(Call.channel == CHANNEL, Call.external_id == leg)
            ).first():
                return leg
            found = session.execute(
                select(Call.external_id)
                .join(CallEvent, and_(CallEvent.call_id == Call.id, CallEvent.key == key))
                .where(Call.channel == CHANNEL, Call.started_at >= now - RECORDING_LOOKBACK)
                .limit(1)
            ).scalar_one_or_none()
        return found

    def _is_vip(self, raw_number: str | None) -> bool:
        return self.vips.is_vip(normalise(raw_number or "", self.region).e164)


# <Enqueue action> QueueResult → the queue exit status Asterisk would give (services/timeline.py).
QUEUE_EXITS = {"leave": "CALLBACK", "queue-full": "FULL"}


def _timestamp(value: str | None) -> datetime | None:
    """Twilio's ``Timestamp`` (RFC 2822) of a status callback, aware; None if absent or unreadable."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else None
