"""The contact record use cases: record what a voice channel saw, and read calls back.

``record_call`` is the one write path for every channel. It is idempotent: the call is upserted by
(channel, external_id), each timeline entry by its natural key, and the summary columns are then
recomputed from the whole timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, selectinload

from callcenter.db import insert_ignoring_duplicates
from callcenter.exceptions import NotFound
from callcenter.models import Agent, Call, CallEvent, Queue
from callcenter.phone import normalise
from callcenter.services import callbacks, callers, recordings
from callcenter.services.timeline import summarise

MAX_NAME_LENGTH = 128


@dataclass(frozen=True)
class CallSeen:
    """What a channel knows about a call when it reports it (first report fills, later ones add)."""

    channel: str
    external_id: str
    at: datetime
    direction: str = "inbound"
    from_raw: str = ""
    to_raw: str = ""
    caller_name: str = ""


@dataclass(frozen=True)
class Entry:
    """A timeline entry; ``key`` is its natural key within the call."""

    key: str
    kind: str
    at: datetime
    source: str
    node: str | None = None
    seq: int = 0
    data: dict[str, Any] = field(default_factory=dict)


# Rows that hang off a timeline entry, created with the entry's natural key (idempotent).
Effect = Callable[[Session, Call, "Entry", datetime], None]
EFFECTS: dict[str, Effect] = {
    callbacks.REQUESTED: callbacks.create_from_entry,
    recordings.STARTED: recordings.register_from_entry,
}


def to_payload(seen: CallSeen, entries: Sequence[Entry]) -> dict[str, Any]:
    """A JSON-safe form of one report (for the spool)."""

    def encode(item: Any) -> dict[str, Any]:
        values = asdict(item)
        values["at"] = item.at.isoformat()
        return values

    return {"seen": encode(seen), "entries": [encode(entry) for entry in entries]}


def from_payload(payload: dict[str, Any]) -> tuple[CallSeen, list[Entry]]:
    seen = CallSeen(**{**payload["seen"], "at": datetime.fromisoformat(payload["seen"]["at"])})
    entries = [Entry(**{**raw, "at": datetime.fromisoformat(raw["at"])}) for raw in payload["entries"]]
    return seen, entries


def _clean_name(name: str) -> str:
    # Names arrive from the network: keep them as text (templates escape), bounded, without controls.
    return "".join(ch for ch in name if ch.isprintable())[:MAX_NAME_LENGTH]


# Built once, so each report only binds its key (no statement construction per report).
_CALL_BY_KEY = select(Call).where(
    Call.channel == bindparam("channel"), Call.external_id == bindparam("external_id")
)


def record_call(
    session: Session, seen: CallSeen, entries: Sequence[Entry], *, region: str, now: datetime
) -> Call:
    """Upsert the call and its timeline entries, then recompute the summary. Replays change nothing."""
    number = normalise(seen.from_raw, region)
    to_number = normalise(seen.to_raw, region)
    insert_ignoring_duplicates(
        session,
        Call,
        [
            {
                "channel": seen.channel,
                "external_id": seen.external_id,
                "direction": seen.direction,
                "from_raw": number.raw,
                "from_e164": number.e164,
                "from_valid": number.valid,
                "to_raw": to_number.raw,
                "to_e164": to_number.e164,
                "caller_name": _clean_name(seen.caller_name),
                "created_at": now,
                "started_at": seen.at,
                "ivr_path": [],
                "priority": 0,
                "disposition": "in_ivr",
            }
        ],
        ["channel", "external_id"],
    )
    # No autoflush from here to the summary: the reports of a batch (services/journal.py) leave
    # their calls' changes to one flush at commit, where the UPDATEs go out together.
    call = session.execute(
        _CALL_BY_KEY,
        {"channel": seen.channel, "external_id": seen.external_id},
        execution_options={"autoflush": False},
    ).scalar_one()
    _fill_missing(call, seen, region)
    customer = call.to_e164 if call.direction == "outbound" else call.from_e164  # who we talk to
    if call.caller_id is None and customer:
        with session.no_autoflush:
            call.caller_id = callers.ensure_caller(session, customer, now=now).id
    insert_ignoring_duplicates(
        session,
        CallEvent,
        [
            {
                "call_id": call.id,
                "key": entry.key[:128],
                "kind": entry.kind,
                "at": entry.at,
                "seq": entry.seq,
                "source": entry.source,
                "node": entry.node,
                "data": entry.data,
                "recorded_at": now,
            }
            for entry in entries
        ],
        ["call_id", "key"],
    )
    with session.no_autoflush:  # _refresh reads the entries (in the database already) and reference tables
        _refresh(session, call, seen.at)
    for entry in entries:
        effect = EFFECTS.get(entry.kind)
        if effect is not None:
            effect(session, call, entry, now)
    return call


def _fill_missing(call: Call, seen: CallSeen, region: str) -> None:
    """A later report may know more (e.g. the number); it never overwrites what is known."""
    if not call.from_raw and seen.from_raw:
        number = normalise(seen.from_raw, region)
        call.from_raw, call.from_e164, call.from_valid = number.raw, number.e164, number.valid
    if not call.caller_name and seen.caller_name:
        call.caller_name = _clean_name(seen.caller_name)


def _refresh(session: Session, call: Call, first_seen: datetime) -> None:
    events = session.execute(select(CallEvent).where(CallEvent.call_id == call.id)).scalars().all()
    summary = summarise(events)
    starts = [moment for moment in (summary.started_at, first_seen, call.started_at) if moment]
    call.started_at = min(starts)
    call.ended_at = summary.ended_at
    call.ivr_path = summary.ivr_path
    call.last_node = summary.last_node
    call.ivr_branch = summary.ivr_branch
    call.priority = summary.priority
    call.disposition = summary.disposition
    call.end_reason = summary.end_reason
    call.answered_at = summary.answered_at
    call.wait_s = summary.wait_s
    call.talk_s = summary.talk_s
    call.hangup_side = summary.hangup_side
    call.transfers = summary.transfers
    if summary.queue_name != call.queue_name:
        call.queue_name = summary.queue_name
        call.queue_id = session.execute(
            select(Queue.id).where(Queue.name == summary.queue_name)
        ).scalar_one_or_none()
    if summary.agent_interface and (summary.agent_interface != call.agent_interface or call.agent_id is None):
        call.agent_interface = summary.agent_interface[:64]
        call.agent_id = _agent_for_interface(session, summary.agent_interface)


def _agent_for_interface(session: Session, interface: str) -> int | None:
    """The agent whose extension names this queue member: ``PJSIP/1001``, ``Local/x@agents/n``, ``1001``.

    On Twilio the member is the agent's Client identity (``client:alice``) or phone number, both kept
    in ``Agent.twilio_identity``.
    """
    if interface.startswith("client:") or interface.startswith("+"):
        identity = interface.removeprefix("client:")
        query = select(Agent.id).where(Agent.twilio_identity == identity)
        return session.execute(query).scalar_one_or_none()
    bare = interface.removesuffix("/n")
    resource = bare.split("/", 1)[-1]
    candidates = list(dict.fromkeys([interface, bare, resource, resource.split("@", 1)[0]]))
    found = dict(
        session.execute(select(Agent.extension, Agent.id).where(Agent.extension.in_(candidates)))
        .tuples()
        .all()
    )
    return next((found[candidate] for candidate in candidates if candidate in found), None)


def id_for_key(session: Session, channel: str, external_id: str) -> int | None:
    """The call's id from its natural key (channel, external id), or None if it is not on record."""
    query = select(Call.id).where(Call.channel == channel, Call.external_id == external_id)
    return session.execute(query).scalar_one_or_none()


def exists(session: Session, channel: str, external_id: str) -> bool:
    return id_for_key(session, channel, external_id) is not None


def get_call(session: Session, call_id: int) -> Call:
    call = session.execute(
        select(Call)
        .where(Call.id == call_id)
        .options(
            selectinload(Call.events),
            selectinload(Call.recordings),
            selectinload(Call.caller),
            selectinload(Call.queue),
        )
    ).scalar_one_or_none()
    if call is None:
        raise NotFound(f"call {call_id}")
    return call


def recent_calls(session: Session, *, limit: int = 50, before_id: int | None = None) -> list[Call]:
    """Calls newest first (by start time, then id), ``limit`` at a time, for keyset paging."""
    query = (
        select(Call)
        .options(selectinload(Call.caller), selectinload(Call.queue))
        .order_by(Call.started_at.desc(), Call.id.desc())
    )
    if before_id is not None:
        anchor = session.get(Call, before_id)
        if anchor is not None:
            query = query.where(
                (Call.started_at < anchor.started_at)
                | ((Call.started_at == anchor.started_at) & (Call.id < anchor.id))
            )
    return list(session.execute(query.limit(limit)).scalars())
