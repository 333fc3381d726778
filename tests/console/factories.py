"""Test data of the console tests: agents linked to accounts, answered calls, cases."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from callcenter.db import Database
from callcenter.models import Agent, Case
from callcenter.services.calls import CallSeen, Entry, record_call
from tests.web.factories import Account, ivr_entries, make_account


def make_agent(
    db: Database,
    now: datetime,
    *,
    user_id: int | None,
    name: str = "李娜",
    extension: str | None = "1001",
    twilio_identity: str | None = None,
) -> int:
    with db.transaction() as session:
        agent = Agent(
            name=name, extension=extension, twilio_identity=twilio_identity, user_id=user_id, created_at=now
        )
        session.add(agent)
        session.flush()
        return agent.id


def agent_account(
    db: Database,
    now: datetime,
    username: str = "lina",
    roles: tuple[str, ...] = ("agent_consultation",),
    **agent: Any,
) -> tuple[Account, int]:
    account = make_account(db, now, username, roles)
    return account, make_agent(db, now, user_id=account.id, **agent)


def answered_call(
    db: Database,
    now: datetime,
    *,
    linkedid: str,
    start: datetime,
    extension: str = "1001",
    from_raw: str = "13800138000",
    caller_name: str = "张三",
    ended: bool = True,
    channel: str = "asterisk",
) -> int:
    """A call that went through the IVR, rang ``PJSIP/<extension>``, was answered and (maybe) ended."""
    seen = CallSeen(
        channel=channel,
        external_id=linkedid,
        at=start,
        from_raw=from_raw,
        to_raw="4008123123",
        caller_name=caller_name,
    )
    connect_at = start + timedelta(seconds=30)
    member = {
        "queue": "consultation",
        "interface": f"PJSIP/{extension}",
        "member": extension,
        "channel": f"PJSIP/trunk-{linkedid}",
        "dest_channel": f"PJSIP/{extension}-{linkedid}",
    }
    entries = [
        *ivr_entries(linkedid, start, "consultation"),
        Entry(
            f"ami:join:{linkedid}",
            "queue.join",
            start + timedelta(seconds=11),
            "ami",
            None,
            0,
            {"queue": "consultation", "position": 1, "channel": f"PJSIP/trunk-{linkedid}"},
        ),
        Entry(
            f"ami:connect:{linkedid}",
            "agent.connect",
            connect_at,
            "ami",
            None,
            0,
            {**member, "holdtime": 19, "ringtime": 2},
        ),
    ]
    if ended:
        end_at = connect_at + timedelta(seconds=60)
        complete = {**member, "holdtime": 19, "talktime": 60, "reason": "caller"}
        hangup = {
            "cause": 16,
            "cause_txt": "Normal Clearing",
            "channel": member["channel"],
            "first_leg": True,
        }
        entries.append(Entry(f"ami:complete:{linkedid}", "agent.complete", end_at, "ami", None, 0, complete))
        entries.append(Entry(f"ami:hangup:{linkedid}", "call.hangup", end_at, "ami", None, 0, hangup))
    with db.transaction() as session:
        return record_call(session, seen, entries, region="CN", now=now).id


def open_case(
    db: Database,
    now: datetime,
    *,
    caller_id: int | None,
    number: str,
    status: str = "in_progress",
    title: str = "退款未到账",
) -> int:
    with db.transaction() as session:
        case = Case(
            number=number,
            case_type="complaint",
            status=status,
            caller_id=caller_id,
            title=title,
            registered_at=now - timedelta(days=1),
            first_reply_due_at=now,
            resolution_due_at=now + timedelta(days=2),
            updated_at=now,
        )
        session.add(case)
        session.flush()
        return case.id
