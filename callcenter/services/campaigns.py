"""Outbound campaigns (D41): who to call (a filter over the customer archive, or an uploaded list),
who calls them (balanced allocation to agents), progress, and the do-not-call list."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.db import insert_ignoring_duplicates
from callcenter.models import Call, CallbackTask, Caller, Campaign, CampaignMember, Case, DoNotCall
from callcenter.models.callback import CALLBACK_KINDS
from callcenter.models.campaign import CAMPAIGN_MODES
from callcenter.phone import normalise
from callcenter.services.callback_tasks import DEFAULT_OWNER_ROLES, entitled_agents, refused_agents

SKILL_WEIGHTS = {"junior": 1, "mid": 2, "senior": 3}
MAX_UPLOAD_ROWS = 50_000


class CampaignError(ValueError):
    """A campaign that cannot be created or changed as asked (the message says why)."""


@dataclass(frozen=True)
class CallerFilter:
    """Customers to call: every given criterion must hold."""

    tiers: tuple[str, ...] = ()
    not_contacted_since: datetime | None = None  # last call before this (or never called)
    case_type: str | None = None  # has a case of this type
    region: str = ""  # region contains

    def as_json(self) -> dict[str, Any]:
        return {
            "tiers": list(self.tiers),
            "not_contacted_since": self.not_contacted_since.isoformat() if self.not_contacted_since else None,
            "case_type": self.case_type,
            "region": self.region,
        }


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based line of the file, the header being line 1
    value: str
    message: str


@dataclass(frozen=True)
class Upload:
    numbers: tuple[tuple[str, str], ...]  # (E.164, name)
    errors: tuple[RowError, ...]


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    kind: str
    mode: str
    timezone: str
    due_from: datetime
    calls_per_minute: float = 10.0
    max_concurrent: int = 5
    max_attempts: int = 3
    marketing: bool = False
    weighted: bool = False
    window: tuple[time, time] | None = None
    agent_ids: tuple[int, ...] = ()
    created_by_id: int | None = None
    owner_roles: tuple[str, ...] = DEFAULT_OWNER_ROLES  # who may take the tasks ([dialler] callback_roles)

    def check(self) -> None:
        if not self.name.strip():
            raise CampaignError("a campaign needs a name")
        if self.kind not in CALLBACK_KINDS:
            raise CampaignError(f"unknown callback kind {self.kind!r}")
        if self.mode not in CAMPAIGN_MODES:
            raise CampaignError(f"unknown mode {self.mode!r}")
        if self.mode != "survey" and not self.agent_ids:
            raise CampaignError("preview and progressive campaigns need at least one agent")
        if self.window is not None and self.window[1] <= self.window[0]:
            raise CampaignError("the window must end after it starts")


def parse_upload(text: str, region: str) -> Upload:
    """A CSV with a ``number`` column (and optionally ``name``); every bad row is reported by line."""
    reader = csv.DictReader(io.StringIO(text))
    fields = [name.strip().lower() for name in reader.fieldnames or []]
    if "number" not in fields:
        return Upload((), (RowError(1, ",".join(fields), "no 'number' column"),))
    reader.fieldnames = fields
    numbers: list[tuple[str, str]] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for count, row in enumerate(reader, start=1):
        line = reader.line_num  # the file's own line (blank lines are skipped, not counted as rows)
        if count > MAX_UPLOAD_ROWS:
            errors.append(RowError(line, "", f"more than {MAX_UPLOAD_ROWS} rows; the rest is ignored"))
            break
        raw = (row.get("number") or "").strip()
        parsed = normalise(raw, region)
        if parsed.e164 is None:
            errors.append(RowError(line, raw, "not a valid phone number"))
        elif parsed.e164 in seen:
            errors.append(RowError(line, raw, "duplicate of an earlier row"))
        else:
            seen.add(parsed.e164)
            numbers.append((parsed.e164, (row.get("name") or "").strip()[:128]))
    return Upload(tuple(numbers), tuple(errors))


def select_callers(session: Session, chosen: CallerFilter) -> list[Caller]:
    query = select(Caller)
    if chosen.tiers:
        query = query.where(Caller.tier.in_(chosen.tiers))
    if chosen.region:
        query = query.where(Caller.region.contains(chosen.region))
    if chosen.case_type:
        with_case = select(Case.caller_id).where(
            Case.case_type == chosen.case_type, Case.caller_id.is_not(None)
        )
        query = query.where(Caller.id.in_(with_case))
    if chosen.not_contacted_since is not None:
        recent = select(Call.caller_id).where(
            Call.caller_id.is_not(None), Call.started_at >= chosen.not_contacted_since
        )
        query = query.where(Caller.id.not_in(recent))
    return list(session.execute(query.order_by(Caller.id)).scalars())


def allocate(count: int, agents: Sequence[tuple[int, str]], *, weighted: bool) -> list[int]:
    """Agent ids for ``count`` tasks, evenly by count (or by skill weight): each next task goes to
    the agent with the fewest tasks per unit of weight, ties by the order given."""
    if not agents:
        return []
    weights = [SKILL_WEIGHTS.get(level, 1) if weighted else 1 for _, level in agents]
    loads = [0] * len(agents)
    chosen: list[int] = []
    for _ in range(count):
        best = min(range(len(agents)), key=lambda i: ((loads[i] + 1) / weights[i], i))
        loads[best] += 1
        chosen.append(agents[best][0])
    return chosen


def create_campaign(
    session: Session,
    spec: CampaignSpec,
    now: datetime,
    *,
    callers: Iterable[Caller] = (),
    upload: Upload | None = None,
    source: dict[str, Any] | None = None,
) -> Campaign:
    """A campaign (draft) with one callback task per distinct number, allocated to the agents."""
    spec.check()
    campaign = Campaign(
        name=spec.name.strip()[:120],
        kind=spec.kind,
        mode=spec.mode,
        status="draft",
        marketing=spec.marketing,
        timezone=spec.timezone,
        window_start=spec.window[0] if spec.window else None,
        window_end=spec.window[1] if spec.window else None,
        calls_per_minute=spec.calls_per_minute,
        max_concurrent=spec.max_concurrent,
        max_attempts=spec.max_attempts,
        weighted=spec.weighted,
        source=source or {},
        due_from=spec.due_from,
        created_by_id=spec.created_by_id,
        created_at=now,
        updated_at=now,
    )
    session.add(campaign)
    session.flush()
    targets: dict[str, tuple[int | None, str]] = {}
    for caller in callers:
        targets.setdefault(caller.e164, (caller.id, caller.name))
    if upload is not None:
        known = _callers_by_number(session, [number for number, _ in upload.numbers])
        for number, name in upload.numbers:
            targets.setdefault(number, (known.get(number), name))
    _add_members(session, campaign, spec, targets, now)
    return campaign


def _callers_by_number(session: Session, numbers: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        rows = session.execute(select(Caller.e164, Caller.id).where(Caller.e164.in_(chunk))).tuples()
        found.update({number: caller_id for number, caller_id in rows})
    return found


def _add_members(
    session: Session,
    campaign: Campaign,
    spec: CampaignSpec,
    targets: dict[str, tuple[int | None, str]],
    now: datetime,
) -> None:
    agents: list[tuple[int, str]] = []
    if spec.mode != "survey":
        refused = refused_agents(session, spec.agent_ids, spec.owner_roles)
        if refused:
            raise CampaignError("these agents do not take callback tasks: " + ", ".join(refused))
        chosen = set(spec.agent_ids)
        entitled = entitled_agents(session, spec.owner_roles)
        agents = sorted((agent.id, agent.skill_level) for agent in entitled if agent.id in chosen)
    numbers = sorted(targets)
    owners = allocate(len(numbers), agents, weighted=spec.weighted)
    rows_task = [
        {
            "key": f"campaign:{campaign.id}:{number}",
            "kind": "survey" if spec.mode == "survey" else spec.kind,
            "status": "pending",
            "number_raw": number,
            "number_e164": number,
            "caller_id": targets[number][0],
            "call_id": None,
            "queue_name": None,
            "language": "zh",
            "priority": 0,
            "due_at": spec.due_from,
            "enqueued_at": None,
            "attempts": 0,
            "note": targets[number][1],
            "data": {"campaign_id": campaign.id},
            "created_at": now,
            "updated_at": now,
        }
        for number in numbers
    ]
    for start in range(0, len(rows_task), 1000):
        insert_ignoring_duplicates(session, CallbackTask, rows_task[start : start + 1000], ["key"])
    prefix = f"campaign:{campaign.id}:"
    query = select(CallbackTask.key, CallbackTask.id).where(
        CallbackTask.key.startswith(prefix, autoescape=True)
    )
    ids = {key: task_id for key, task_id in session.execute(query).tuples()}
    members = [
        {
            "task_id": ids[f"{prefix}{number}"],
            "campaign_id": campaign.id,
            "agent_id": owners[index] if owners else None,
            "released_at": None,
        }
        for index, number in enumerate(numbers)
    ]
    for start in range(0, len(members), 1000):
        insert_ignoring_duplicates(session, CampaignMember, members[start : start + 1000], ["task_id"])


def set_status(session: Session, campaign_id: int, status: str, now: datetime) -> Campaign:
    allowed = {"draft": {"active"}, "active": {"paused", "finished"}, "paused": {"active", "finished"}}
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError("no such campaign")
    if status not in allowed.get(campaign.status, set()):
        raise CampaignError(f"a {campaign.status} campaign cannot become {status}")
    campaign.status, campaign.updated_at = status, now
    return campaign


def release(session: Session, task_id: int, agent_id: int | None, now: datetime) -> CampaignMember:
    """Preview mode: the agent clicked to dial; the dialler places it next (its rules still apply)."""
    member = session.get(CampaignMember, task_id)
    if member is None:
        raise CampaignError("not a campaign task")
    if agent_id is not None and member.agent_id not in (None, agent_id):
        raise CampaignError("this task is allocated to another agent")
    member.released_at = member.released_at or now
    task = member.task
    if task.status == "pending" and task.due_at > now:
        task.due_at, task.updated_at = now, now
    return member


@dataclass
class Progress:
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return sum(self.by_status.get(status, 0) for status in ("done", "unreachable", "cancelled", "failed"))

    @property
    def percent(self) -> int:
        return 0 if not self.total else round(100 * self.finished / self.total)


def progress(session: Session, campaign_id: int) -> Progress:
    rows = session.execute(
        select(CallbackTask.status, func.count())
        .join(CampaignMember, CampaignMember.task_id == CallbackTask.id)
        .where(CampaignMember.campaign_id == campaign_id)
        .group_by(CallbackTask.status)
    ).tuples()
    counts = {status: count for status, count in rows}
    return Progress(sum(counts.values()), counts)


def add_to_dnc(
    session: Session, raw: str, region: str, reason: str, user_id: int | None, now: datetime
) -> str:
    parsed = normalise(raw, region)
    if parsed.e164 is None:
        raise CampaignError("not a valid phone number")
    insert_ignoring_duplicates(
        session,
        DoNotCall,
        [{"e164": parsed.e164, "reason": reason[:500], "added_by_id": user_id, "added_at": now}],
        ["e164"],
    )
    return parsed.e164


def callback_due(
    now: datetime, *, urgent: bool, ordinary_hours: int, promised_at: datetime | None = None
) -> datetime:
    """D40: urgent → now; a promised time → then; ordinary → within ``ordinary_hours`` (24 h)."""
    if urgent:
        return now
    if promised_at is not None:
        return promised_at
    return now + timedelta(hours=ordinary_hours)


def schedule_callback(
    session: Session,
    *,
    key: str,
    kind: str,
    number: str,
    now: datetime,
    region: str,
    ordinary_hours: int,
    urgent: bool = False,
    promised_at: datetime | None = None,
    caller_id: int | None = None,
    call_id: int | None = None,
    case_id: int | None = None,
    note: str = "",
) -> CallbackTask:
    """A callback the organisation owes (a promised reply, a complaint callback, an urgent one):
    keyed by what created it, so asking twice creates one task. The dialler places it."""
    if kind not in CALLBACK_KINDS:
        raise CampaignError(f"unknown callback kind {kind!r}")
    parsed = normalise(number, region)
    data: dict[str, Any] = {"urgent": urgent} | ({"case_id": case_id} if case_id is not None else {})
    row = {
        "key": key[:160],
        "kind": kind,
        "status": "pending" if parsed.e164 else "unreachable",
        "number_raw": parsed.raw,
        "number_e164": parsed.e164,
        "caller_id": caller_id,
        "call_id": call_id,
        "queue_name": None,
        "language": "zh",
        "priority": 10 if urgent else 0,
        "due_at": callback_due(now, urgent=urgent, ordinary_hours=ordinary_hours, promised_at=promised_at),
        "enqueued_at": None,
        "attempts": 0,
        "note": note[:1000],
        "data": data,
        "created_at": now,
        "updated_at": now,
    }
    insert_ignoring_duplicates(session, CallbackTask, [row], ["key"])
    return session.execute(select(CallbackTask).where(CallbackTask.key == row["key"])).scalar_one()
