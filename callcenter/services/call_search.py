"""Searching the call log: by number, caller name, date range, queue, agent, disposition, direction.

Results come newest first (start time, then id) a page at a time with keyset paging (``before_id``),
like the unfiltered log. Each filter has an index that starts with it and ends in ``started_at``
(``ix_call_caller_started`` for numbers, ``ix_call_agent_started``, ``ix_call_queue_started``,
``ix_call_started_at`` for dates), so a page costs about the same whatever the table's size
(bench/call_search.py measures it). A name also matches the name the network sent, which no index
covers: that search reads the log newest first until a page is full.

Who may search how is the web's decision (a partial number reveals hidden digits, so only roles with a
need to know may use one); this module only does what it is asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from callcenter.models import Agent, Call, Caller, Queue
from callcenter.phone import normalise

SEPARATORS = re.compile(r"[\s().\-/]")
MIN_PARTIAL_DIGITS = 3
# A partial number matching more customers than this is searched in the calls instead (see below).
MAX_CALLERS = 500


@dataclass(frozen=True)
class NumberPattern:
    """What to look for: an exact E.164 number, or a run of digits found anywhere in one."""

    exact: str | None = None
    digits: str | None = None


def number_pattern(text: str, region: str) -> NumberPattern | None:
    """Read what was typed: a full number in E.164 or national form (``+86 138 0013 8000``,
    ``138-0013-8000``, ``021 6123 4567``) gives an exact pattern; three or more digits give a partial
    one (a national trunk ``0`` or an international ``00`` dropped, as E.164 has neither). None when
    the text is neither."""
    cleaned = SEPARATORS.sub("", text.strip())
    if not cleaned:
        return None
    number = normalise(cleaned, region)
    if number.e164 is not None:
        return NumberPattern(exact=number.e164)
    digits = cleaned.removeprefix("+")
    if not digits.isdigit():
        return None
    if digits.startswith("00"):
        digits = digits[2:]
    elif digits.startswith("0"):
        digits = digits[1:]
    return NumberPattern(digits=digits) if len(digits) >= MIN_PARTIAL_DIGITS else None


@dataclass(frozen=True)
class CallFilter:
    """The search; empty fields do not filter. ``start``/``end`` are aware instants (end excluded)."""

    number: NumberPattern | None = None
    name: str = ""
    start: datetime | None = None
    end: datetime | None = None
    queue_id: int | None = None
    agent_id: int | None = None
    disposition: str | None = None
    direction: str | None = None

    @property
    def empty(self) -> bool:
        return self == CallFilter()


def day_range(
    first: date | None, last: date | None, zone: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    """The instants from the start of ``first`` to the end of ``last`` (whole days in ``zone``)."""
    start = datetime.combine(first, time(0), tzinfo=zone) if first is not None else None
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone) if last is not None else None
    return start, end


def _number_condition(session: Session, pattern: NumberPattern) -> ColumnElement[bool]:
    """Numbers are found through the caller archive, which has one row per valid number (the
    customer's: the caller inbound, the callee outbound) and is far smaller than the call table; the
    calls then come from ``ix_call_caller_started`` in the log's order. A partial number matching
    very many customers (``138``) is instead looked for in the calls themselves, newest first: with so
    many matches a page fills after a short scan."""
    if pattern.exact is not None:
        query = select(Caller.id).where(Caller.e164 == pattern.exact)
    else:
        query = select(Caller.id).where(Caller.e164.contains(pattern.digits or "")).limit(MAX_CALLERS + 1)
    caller_ids = list(session.execute(query).scalars())
    if pattern.digits and len(caller_ids) > MAX_CALLERS:
        return or_(Call.from_e164.contains(pattern.digits), Call.to_e164.contains(pattern.digits))
    return Call.caller_id.in_(caller_ids)


def conditions(session: Session, found: CallFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of ``found`` (the number is resolved against the caller archive here)."""
    conditions: list[ColumnElement[bool]] = []
    if found.number is not None:
        conditions.append(_number_condition(session, found.number))
    if found.name:
        by_archive = select(Caller.id).where(Caller.name.icontains(found.name, autoescape=True))
        conditions.append(
            or_(Call.caller_name.icontains(found.name, autoescape=True), Call.caller_id.in_(by_archive))
        )
    if found.start is not None:
        conditions.append(Call.started_at >= found.start)
    if found.end is not None:
        conditions.append(Call.started_at < found.end)
    if found.queue_id is not None:
        conditions.append(Call.queue_id == found.queue_id)
    if found.agent_id is not None:
        conditions.append(Call.agent_id == found.agent_id)
    if found.disposition:
        conditions.append(Call.disposition == found.disposition)
    if found.direction:
        conditions.append(Call.direction == found.direction)
    return conditions


def _after_anchor(session: Session, query: Select[tuple[Call]], before_id: int) -> Select[tuple[Call]]:
    anchor = session.execute(select(Call.started_at, Call.id).where(Call.id == before_id)).first()
    if anchor is None:
        return query
    started_at, anchor_id = anchor
    return query.where(
        or_(Call.started_at < started_at, and_(Call.started_at == started_at, Call.id < anchor_id))
    )


def search_calls(
    session: Session, found: CallFilter, *, limit: int = 50, before_id: int | None = None
) -> list[Call]:
    """Calls matching ``found``, newest first, ``limit`` at a time after the call ``before_id``."""
    query = (
        select(Call)
        .where(*conditions(session, found))
        .options(selectinload(Call.caller), selectinload(Call.queue), selectinload(Call.agent))
        .order_by(Call.started_at.desc(), Call.id.desc())
    )
    if before_id is not None:
        query = _after_anchor(session, query, before_id)
    return list(session.execute(query.limit(limit)).scalars())


def count_calls(session: Session, found: CallFilter) -> int:
    """How many calls match ``found`` (the total shown above the log's pages)."""
    query = select(func.count()).select_from(Call).where(*conditions(session, found))
    return int(session.execute(query).scalar_one())


@dataclass(frozen=True)
class Choice:
    id: int
    label: str


def queue_choices(session: Session, locale: str) -> list[Choice]:
    rows = session.execute(select(Queue.id, Queue.name, Queue.title_zh, Queue.title_en).order_by(Queue.name))
    return [
        Choice(id_, (title_zh if locale == "zh" else title_en) or name)
        for id_, name, title_zh, title_en in rows
    ]


def agent_choices(session: Session) -> list[Choice]:
    rows = session.execute(select(Agent.id, Agent.name).order_by(Agent.name, Agent.id))
    return [Choice(id_, name) for id_, name in rows]
