"""Campaign services: allocation, the caller filter, CSV validation, owed callbacks, survey answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import (
    Agent,
    Call,
    CallbackAttempt,
    CallbackResult,
    CallbackTask,
    Caller,
    CallEvent,
    CampaignMember,
    Case,
)
from callcenter.services import callback_results, campaigns
from tests.campaigns.conftest import Clock, staff_agent


def test_allocation_is_balanced_and_optionally_weighted() -> None:
    agents = [(1, "junior"), (2, "mid"), (3, "senior")]
    even = campaigns.allocate(10, agents, weighted=False)
    assert sorted(even.count(agent) for agent in (1, 2, 3)) == [3, 3, 4]
    weighted = campaigns.allocate(12, agents, weighted=True)
    assert [weighted.count(agent) for agent in (1, 2, 3)] == [2, 4, 6]
    assert campaigns.allocate(3, [], weighted=False) == []


def test_upload_validation_reports_each_bad_row() -> None:
    upload = campaigns.parse_upload("Number,Name\n13800138000,甲\n12345,乙\n\n+8613800138000,丙\n", "CN")
    assert upload.numbers == (("+8613800138000", "甲"),)
    assert [(error.row, error.message) for error in upload.errors] == [
        (3, "not a valid phone number"),
        (5, "duplicate of an earlier row"),
    ]
    assert campaigns.parse_upload("phone\n1\n", "CN").errors[0].message == "no 'number' column"


def test_filter_allocates_members_to_agents(db: Database, clock: Clock) -> None:
    now = clock()
    with db.transaction() as session:
        callers = [
            Caller(
                e164=f"+86138001380{index:02d}", name=f"c{index}", tier=tier, created_at=now, updated_at=now
            )
            for index, tier in enumerate(["key", "key", "key", "normal", "vip"])
        ]
        session.add_all(callers)
        staff_agent(session, now, "甲")
        staff_agent(session, now, "乙")
        session.add(
            Call(
                channel="asterisk",
                external_id="x1",
                caller_id=callers[0].id,
                created_at=now,
                started_at=now - timedelta(days=3),
            )
        )
        session.add(
            Case(
                number="TS-1",
                case_type="complaint",
                caller_id=callers[1].id,
                registered_at=now,
                first_reply_due_at=now,
                resolution_due_at=now,
                updated_at=now,
            )
        )
        session.flush()
        quiet = campaigns.select_callers(
            session, campaigns.CallerFilter(tiers=("key",), not_contacted_since=now - timedelta(days=7))
        )
        assert [caller.name for caller in quiet] == ["c1", "c2"]
        complained = campaigns.select_callers(session, campaigns.CallerFilter(case_type="complaint"))
        assert [caller.name for caller in complained] == ["c1"]
        agent_ids = tuple(session.execute(select(Agent.id)).scalars())
        spec = campaigns.CampaignSpec(
            "key", "key_account", "progressive", "Asia/Shanghai", now, agent_ids=agent_ids
        )
        chosen = campaigns.select_callers(session, campaigns.CallerFilter(tiers=("key",)))
        campaign = campaigns.create_campaign(session, spec, now, callers=chosen)
        owners = (
            session.execute(select(CampaignMember.agent_id).where(CampaignMember.campaign_id == campaign.id))
            .scalars()
            .all()
        )
        assert sorted(owners.count(agent) for agent in agent_ids) == [1, 2]
        with pytest.raises(campaigns.CampaignError, match="agent"):
            campaigns.create_campaign(
                session, campaigns.CampaignSpec("x", "key_account", "preview", "Asia/Shanghai", now), now
            )
        with pytest.raises(campaigns.CampaignError, match="cannot become"):
            campaigns.set_status(session, campaign.id, "paused", now)


def test_owed_callbacks_urgent_now_ordinary_within_24h(db: Database, clock: Clock) -> None:
    now = clock()
    with db.transaction() as session:
        urgent = campaigns.schedule_callback(
            session,
            key="case:1:urgent",
            kind="complaint",
            number="13800138000",
            now=now,
            region="CN",
            ordinary_hours=24,
            urgent=True,
            case_id=1,
        )
        ordinary = campaigns.schedule_callback(
            session,
            key="x:2",
            kind="after_sale",
            number="13800138001",
            now=now,
            region="CN",
            ordinary_hours=24,
        )
        promised = campaigns.schedule_callback(
            session,
            key="x:3",
            kind="promised_reply",
            number="withheld",
            now=now,
            region="CN",
            ordinary_hours=24,
            promised_at=now + timedelta(hours=3),
        )
        again = campaigns.schedule_callback(
            session,
            key="case:1:urgent",
            kind="complaint",
            number="13800138000",
            now=now,
            region="CN",
            ordinary_hours=24,
            urgent=True,
        )
        assert (urgent.due_at, urgent.priority, urgent.data["case_id"]) == (now, 10, 1)
        assert ordinary.due_at == now + timedelta(hours=24)
        assert (promised.due_at, promised.status) == (now + timedelta(hours=3), "unreachable")
        assert again.id == urgent.id


def test_survey_key_becomes_the_result(db: Database, clock: Clock) -> None:
    now = clock()
    with db.transaction() as session:
        task = CallbackTask(
            key="s1",
            kind="survey",
            status="done",
            number_e164="+8613800138000",
            due_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(task)
        session.flush()
        session.add(
            CallbackAttempt(
                key="cb-1-1",
                task_id=task.id,
                number=1,
                channel="twilio",
                e164="+8613800138000",
                state="done",
                result="reached",
                external_id="CA1",
                started_at=now,
            )
        )
        call = Call(channel="twilio", external_id="CA1", direction="outbound", created_at=now, started_at=now)
        session.add(call)
        session.flush()
        session.add(
            CallEvent(
                call_id=call.id,
                key="k1",
                kind="ivr.input",
                at=now,
                source="twilio",
                node="survey_menu",
                data={"digits": "2", "outcome": "option"},
                recorded_at=now,
            )
        )
    for _ in range(2):
        with db.transaction() as session:
            callback_results.record_survey_answers(session, now)
    with db.read() as session:
        [result] = session.execute(select(CallbackResult)).scalars().all()
    assert (result.satisfaction, result.satisfied, result.source) == (2, False, "ivr_survey")
