"""The contact record use cases: record what a voice channel saw, and read calls back.

``record_calls`` (``record_call`` for one report) is the one write path for every channel. It is
idempotent: the call is upserted by (channel, external_id), each timeline entry by its natural key,
and the summary columns are then recomputed from the whole timeline. It is set-based: a batch of
reports costs a handful of statements, not several per report.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.orm import Session, selectinload

from callcenter.db import executemany, insert_ignoring, insert_ignoring_duplicates
from callcenter.exceptions import NotFound
from callcenter.models import Call, Caller, CallEvent, Queue
from callcenter.phone import normalise, region_of
from callcenter.services import callbacks, missed_rings, recordings
from callcenter.services.members import agent_for_interface
from callcenter.services.timeline import Summary, summarise

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 128
INBOUND, OUTBOUND = "inbound", "outbound"


@dataclass(frozen=True)
class CallSeen:
    """What a channel knows about a call when it reports it (first report fills, later ones add)."""

    channel: str
    external_id: str
    at: datetime
    direction: str = "inbound"  # "" when the channel cannot tell (an AMI event): the record keeps its own
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
    missed_rings.MISSED: missed_rings.register_from_entry,
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


# Characters no text column should hold: PostgreSQL refuses a NUL outright, which would fail the
# whole report. They are removed, and the report keeps a ``record.cleaned`` entry saying where.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SEEN_TEXT = ("external_id", "from_raw", "to_raw", "caller_name")
CLEANED = "record.cleaned"


def _without_controls(seen: CallSeen, entries: Sequence[Entry]) -> tuple[CallSeen, Sequence[Entry]]:
    """The report with control characters removed from its text fields (and noted), else as it is."""
    fields = [name for name in _SEEN_TEXT if _CONTROL.search(getattr(seen, name))]
    dirty = [
        entry
        for entry in entries
        if _CONTROL.search(entry.key + entry.kind + entry.source + (entry.node or ""))
    ]
    if not fields and not dirty:
        return seen, entries
    changes: dict[str, Any] = {name: _CONTROL.sub("", getattr(seen, name)) for name in fields}
    seen = replace(seen, **changes)
    cleaned = [_entry_without_controls(entry) if entry in dirty else entry for entry in entries]
    noted = fields + [f"entry {_CONTROL.sub('', entry.key)!r}" for entry in dirty]
    log.warning(
        "call %s/%s: control characters removed from %s", seen.channel, seen.external_id, ", ".join(noted)
    )
    note = Entry(
        f"{CLEANED}:{','.join(fields)}:{len(dirty)}", CLEANED, seen.at, "system", data={"fields": noted}
    )
    return seen, [*cleaned, note]


def _entry_without_controls(entry: Entry) -> Entry:
    def clean(text: str) -> str:
        return _CONTROL.sub("", text)

    node = clean(entry.node) if entry.node else None
    return replace(entry, key=clean(entry.key), kind=clean(entry.kind), source=clean(entry.source), node=node)


def _clean_name(name: str) -> str:
    # Names arrive from the network: keep them as text (templates escape), bounded, without controls.
    if name.isprintable():
        return name[:MAX_NAME_LENGTH]
    return "".join(ch for ch in name if ch.isprintable())[:MAX_NAME_LENGTH]


def record_call(
    session: Session, seen: CallSeen, entries: Sequence[Entry], *, region: str, now: datetime
) -> Call:
    """Upsert the call and its timeline entries, then recompute the summary. Replays change nothing."""
    session.flush()  # the set-based write below reads through Core: pending ORM changes go first
    (call_id,) = record_calls(session, [(seen, entries)], region=region, now=now)
    return session.get_one(Call, call_id, populate_existing=True)


def record_calls(
    session: Session,
    reports: Sequence[tuple[CallSeen, Sequence[Entry]]],
    *,
    region: str,
    now: datetime,
) -> list[int]:
    """``record_call`` for many reports at once, set-based: the call id of each report, in order.

    The writer's group commit hands over up to a few hundred reports; they cost a handful of
    statements together instead of several each: one SELECT of the calls on record, one of their
    callers, one INSERT of the new calls (their summary computed from the entries in hand: nobody
    else can have written a timeline for a call this transaction creates), one INSERT of every
    entry, one SELECT of the timelines of the calls that were on record, one UPDATE (executemany)
    of those whose summary changed. Reports of the same call are merged (one call, all entries).
    """
    reports = [_without_controls(seen, entries) for seen, entries in reports]
    groups: dict[tuple[str, str], list[tuple[CallSeen, Sequence[Entry]]]] = {}
    for seen, entries in reports:
        groups.setdefault((seen.channel, seen.external_id), []).append((seen, entries))
    batch = [
        _Pending(_merged(group), [e for _, entries in group for e in entries]) for group in groups.values()
    ]
    connection = session.connection()
    on_record = _calls_on_record(connection, [pending.seen for pending in batch])
    for pending in batch:
        pending.row = on_record.get((pending.seen.channel, pending.seen.external_id))
    lookups = _Lookups(session, now)
    fresh = [pending for pending in batch if pending.row is None]
    if fresh:
        _insert_new_calls(connection, fresh, lookups, region, now)
    for pending in batch:
        if pending.row is not None and pending.call_id is None:  # on record (or inserted meanwhile)
            pending.call_id = pending.row["id"]
    insert_ignoring_duplicates(
        session,
        CallEvent,
        [_event_row(pending.call_id, entry, now) for pending in batch for entry in pending.entries],
        ["call_id", "key"],
    )
    known = [pending for pending in batch if not pending.created]
    if known:
        _update_known_calls(connection, known, lookups, region)
    _apply_effects(session, batch, now)
    ids = {(pending.seen.channel, pending.seen.external_id): pending.call_id for pending in batch}
    return [ids[(seen.channel, seen.external_id)] or 0 for seen, _ in reports]


@dataclass
class _Pending:
    """One call of a batch: its merged report, and what the batch learns of it."""

    seen: CallSeen
    entries: list[Entry]
    row: dict[str, Any] | None = None  # the call's columns as on record before this batch
    call_id: int | None = None
    created: bool = False  # inserted by this batch, with its summary


def _merged(group: Sequence[tuple[CallSeen, Sequence[Entry]]]) -> CallSeen:
    """Several reports of one call as one: the earliest sighting, the first known of each field."""
    first = group[0][0]
    if len(group) == 1:
        return first

    def known(name: str) -> str:
        return next((value for seen, _ in group if (value := getattr(seen, name))), "")

    directions = {seen.direction for seen, _ in group}
    return replace(
        first,
        at=min(seen.at for seen, _ in group),
        direction=OUTBOUND if OUTBOUND in directions else known("direction"),
        from_raw=known("from_raw"),
        to_raw=known("to_raw"),
        caller_name=known("caller_name"),
    )


_CALL = cast(Table, Call.__table__)
_EVENT = cast(Table, CallEvent.__table__)
# The summary columns, recomputed from the timeline; and what a later report may fill in.
_DERIVED = (
    "started_at", "ended_at", "ivr_path", "last_node", "ivr_branch", "priority", "disposition",
    "end_reason", "answered_at", "wait_s", "talk_s", "hangup_side", "transfers", "queue_name",
    "queue_id", "agent_interface", "agent_id",
)  # fmt: skip
_FILLED = (
    "direction", "from_raw", "from_e164", "from_valid", "to_raw", "to_e164", "caller_name", "caller_id",
)  # fmt: skip
_READ = ("id", "channel", "external_id", *_FILLED, *_DERIVED)
# Built once, so SQLAlchemy compiles each statement once and each batch only binds its values.
_CALLS_BY_KEY = select(*(_CALL.c[name] for name in _READ)).where(
    _CALL.c.channel == bindparam("channel"),
    _CALL.c.external_id.in_(bindparam("external_ids", expanding=True)),
)
_CALLERS_BY_NUMBER = select(Caller.e164, Caller.id).where(
    Caller.e164.in_(bindparam("numbers", expanding=True))
)
_QUEUES_BY_NAME = select(Queue.name, Queue.id).where(Queue.name.in_(bindparam("names", expanding=True)))
_TIMELINES = (
    select(_EVENT.c.call_id, _EVENT.c.kind, _EVENT.c.at, _EVENT.c.seq, _EVENT.c.node, _EVENT.c.data)
    .where(_EVENT.c.call_id.in_(bindparam("call_ids", expanding=True)))
    .order_by(_EVENT.c.call_id, _EVENT.c.id)
)
_NEW = {name: f"new_{name}" for name in (*_FILLED, *_DERIVED)}
_UPDATE_CALL = (
    update(_CALL)
    .where(_CALL.c.id == bindparam("call_id"))
    .values({name: bindparam(new) for name, new in _NEW.items()})
)
_NEW_CALL_COLUMNS = ("channel", "external_id", "created_at", *_FILLED, *_DERIVED)


# New calls go in by INSERTs of these many rows (a batch is cut greedily into them), each returning
# the ids of the calls it created (a call another writer created first is not returned).
_NEW_CALL_CHUNKS = (64, 16, 4, 1)
_NEW_CALL_RETURNS = ("id", "channel", "external_id")


def _insert_calls(connection: Connection, rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Insert the new calls of ``rows``; the ids of those this statement created, by key."""
    inserted: dict[tuple[str, str], int] = {}
    start = 0
    for size in _NEW_CALL_CHUNKS:
        statement, names = insert_ignoring(
            _CALL, _NEW_CALL_COLUMNS, ("channel", "external_id"), rows=size, returning=_NEW_CALL_RETURNS
        )
        while len(rows) - start >= size:
            chunk = rows[start : start + size]
            values = {
                name: chunk[index // len(_NEW_CALL_COLUMNS)][column]
                for index, (name, column) in enumerate(names)
            }
            for call_id, channel, external_id in connection.execute(statement, values).tuples():
                inserted[(channel, external_id)] = call_id
            start += size
    return inserted


def _calls_on_record(
    connection: Connection, seen: Sequence[CallSeen]
) -> dict[tuple[str, str], dict[str, Any]]:
    by_channel: dict[str, list[str]] = {}
    for item in seen:
        by_channel.setdefault(item.channel, []).append(item.external_id)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for channel, external_ids in by_channel.items():
        rows = connection.execute(_CALLS_BY_KEY, {"channel": channel, "external_ids": external_ids})
        for row in rows.mappings():
            found[(row["channel"], row["external_id"])] = dict(row)
    return found


class _Lookups:
    """Reference data a batch needs (callers, queues, agents), each looked up once per batch."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session, self.now = session, now
        self.callers: dict[str, int] = {}
        self.queues: dict[str, int | None] = {}

    def caller_ids(self, numbers: Iterable[str]) -> None:
        """Find or create the callers with these E.164 numbers (safe under concurrent first calls)."""
        wanted = sorted(set(numbers) - self.callers.keys())
        if not wanted:
            return
        self.callers.update(self._find_callers(wanted))
        missing = [number for number in wanted if number not in self.callers]
        if missing:  # first contact: as ``callers.ensure_caller``, for all of them at once
            rows = [
                {
                    "e164": number,
                    "name": "",
                    "tier": "normal",
                    "region": region_of(number, "zh"),
                    "notes": "",
                    "created_at": self.now,
                    "updated_at": self.now,
                }
                for number in missing
            ]
            insert_ignoring_duplicates(self.session, Caller, rows, ["e164"])
            self.callers.update(self._find_callers(missing))

    def _find_callers(self, numbers: list[str]) -> dict[str, int]:
        rows = self.session.connection().execute(_CALLERS_BY_NUMBER, {"numbers": numbers})
        return {row.e164: row.id for row in rows}

    def queue_id(self, name: str | None) -> int | None:
        return self.queues.get(name) if name else None

    def queue_ids(self, names: Iterable[str | None]) -> None:
        wanted = sorted({name for name in names if name} - self.queues.keys())
        if wanted:
            rows = self.session.connection().execute(_QUEUES_BY_NAME, {"names": wanted})
            found = {row.name: row.id for row in rows}
            self.queues.update({name: found.get(name) for name in wanted})

    def agent_id(self, interface: str) -> int | None:
        return agent_for_interface(self.session, interface)


def _customer(direction: str, from_e164: str | None, to_e164: str | None) -> str | None:
    return to_e164 if direction == "outbound" else from_e164  # who we talk to


def _insert_new_calls(
    connection: Connection, fresh: Sequence[_Pending], lookups: _Lookups, region: str, now: datetime
) -> None:
    rows = [_new_call_row(pending.seen, region, now) for pending in fresh]
    lookups.caller_ids(
        number for row in rows if (number := _customer(row["direction"], row["from_e164"], row["to_e164"]))
    )
    summaries = [summarise(_first_of_each_key(pending.entries)) for pending in fresh]
    lookups.queue_ids(summary.queue_name for summary in summaries)
    for pending, row, summary in zip(fresh, rows, summaries, strict=True):
        customer = _customer(row["direction"], row["from_e164"], row["to_e164"])
        row["caller_id"] = lookups.callers.get(customer) if customer else None
        row.update(_derived(summary, row, pending.seen.at, lookups))
    inserted = _insert_calls(connection, rows)
    late: list[_Pending] = []
    for pending in fresh:
        call_id = inserted.get((pending.seen.channel, pending.seen.external_id))
        if call_id is not None:
            pending.call_id, pending.created = call_id, True
        else:
            late.append(pending)  # another writer created it meanwhile (PostgreSQL): update it
    if late:
        on_record = _calls_on_record(connection, [pending.seen for pending in late])
        for pending in late:
            pending.row = on_record[(pending.seen.channel, pending.seen.external_id)]


def _new_call_row(seen: CallSeen, region: str, now: datetime) -> dict[str, Any]:
    number = normalise(seen.from_raw, region)
    to_number = normalise(seen.to_raw, region)
    return {
        "channel": seen.channel,
        "external_id": seen.external_id,
        "direction": seen.direction or INBOUND,
        "from_raw": number.raw,
        "from_e164": number.e164,
        "from_valid": number.valid,
        "to_raw": to_number.raw,
        "to_e164": to_number.e164,
        "caller_name": _clean_name(seen.caller_name),
        "created_at": now,
        # As on record before any reducer ran: what ``_derived`` compares with.
        "started_at": seen.at,
        "queue_name": None,
        "agent_interface": None,
        "agent_id": None,
        "queue_id": None,
    }


def _first_of_each_key(entries: Sequence[Entry]) -> list[Entry]:
    """The entries as the timeline keeps them: the first of each natural key, times in UTC."""
    kept: dict[str, Entry] = {}
    for entry in entries:
        kept.setdefault(entry.key[:128], entry)
    # Most entries are stamped by a UTC clock already: copied only when their zone is another.
    return [
        entry if entry.at.tzinfo is UTC else replace(entry, at=entry.at.astimezone(UTC))
        for entry in kept.values()
    ]


def _derived(
    summary: Summary, call: Mapping[str, Any], first_seen: datetime, lookups: _Lookups
) -> dict[str, Any]:
    """The summary columns of ``call`` (its columns as on record) once ``summary`` is applied."""
    starts = [moment for moment in (summary.started_at, first_seen, call["started_at"]) if moment]
    values: dict[str, Any] = {
        "started_at": min(starts),
        "ended_at": summary.ended_at,
        "ivr_path": summary.ivr_path,
        "last_node": summary.last_node,
        "ivr_branch": summary.ivr_branch,
        "priority": summary.priority,
        "disposition": summary.disposition,
        "end_reason": summary.end_reason,
        "answered_at": summary.answered_at,
        "wait_s": summary.wait_s,
        "talk_s": summary.talk_s,
        "hangup_side": summary.hangup_side,
        "transfers": summary.transfers,
        "queue_name": call["queue_name"],
        "queue_id": call["queue_id"],
        "agent_interface": call["agent_interface"],
        "agent_id": call["agent_id"],
    }
    if summary.queue_name != call["queue_name"]:
        values["queue_name"] = summary.queue_name
        lookups.queue_ids([summary.queue_name])
        values["queue_id"] = lookups.queue_id(summary.queue_name)
    interface = summary.agent_interface
    if interface and (interface != call["agent_interface"] or call["agent_id"] is None):
        values["agent_interface"] = interface[:64]
        values["agent_id"] = lookups.agent_id(interface)
    return values


def _event_row(call_id: int | None, entry: Entry, now: datetime) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "key": entry.key[:128],
        "kind": entry.kind,
        "at": entry.at,
        "seq": entry.seq,
        "source": entry.source,
        "node": entry.node,
        "data": entry.data,
        "recorded_at": now,
    }


class _Stored(NamedTuple):
    kind: str
    at: datetime
    seq: int
    node: str | None
    data: dict[str, Any]


def _update_known_calls(
    connection: Connection, known: Sequence[_Pending], lookups: _Lookups, region: str
) -> None:
    """Calls that were on record: fill what a report adds, recompute the summary from the timeline."""
    timelines: dict[int, list[_Stored]] = {}
    ids = [pending.call_id for pending in known]
    for call_id, kind, at, seq, node, data in connection.execute(_TIMELINES, {"call_ids": ids}).tuples():
        timelines.setdefault(call_id, []).append(_Stored(kind, at, seq, node, data))
    filled = [_filled(pending, region) for pending in known]
    customers = [
        _customer(values["direction"], values["from_e164"], values["to_e164"]) for _, values in filled
    ]
    lookups.caller_ids(
        customer
        for (_, values), customer in zip(filled, customers, strict=True)
        if customer and values["caller_id"] is None
    )
    changed: list[dict[str, Any]] = []
    for pending, (row, values), customer in zip(known, filled, customers, strict=True):
        if values["caller_id"] is None and customer:
            values["caller_id"] = lookups.callers.get(customer)
        summary = summarise(timelines.get(row["id"], []))
        values.update(_derived(summary, row, pending.seen.at, lookups))
        if any(values[name] != row[name] for name in values):
            changed.append({"call_id": row["id"], **{_NEW[k]: v for k, v in values.items()}})
    if changed:
        executemany(connection, _UPDATE_CALL, changed)


def _filled(pending: _Pending, region: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The call as on record, and its columns a later report may fill (it never overwrites)."""
    row, seen = pending.row, pending.seen
    assert row is not None
    values = {name: row[name] for name in _FILLED}
    if seen.direction == OUTBOUND and row["direction"] != OUTBOUND:
        # A record an AMI event created before the dialler's report: an outbound call is never
        # reported as inbound, so the outbound report wins, and the customer is the callee.
        values.update(direction=OUTBOUND, caller_id=None)
    if not row["from_raw"] and seen.from_raw:
        number = normalise(seen.from_raw, region)
        values.update(from_raw=number.raw, from_e164=number.e164, from_valid=number.valid)
    if not row["to_raw"] and seen.to_raw:
        number = normalise(seen.to_raw, region)
        values.update(to_raw=number.raw, to_e164=number.e164)
    if not row["caller_name"] and seen.caller_name:
        values["caller_name"] = _clean_name(seen.caller_name)
    return row, values


def _apply_effects(session: Session, batch: Sequence[_Pending], now: datetime) -> None:
    """Rows hanging off entries (callback tasks, recordings), given the call as now on record."""
    for pending in batch:
        effects = [(EFFECTS[entry.kind], entry) for entry in pending.entries if entry.kind in EFFECTS]
        if not effects:
            continue
        call = session.get_one(Call, pending.call_id, populate_existing=True)
        for effect, entry in effects:
            effect(session, call, entry, now)


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
            selectinload(Call.agent),
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
