"""Summaries from timelines, as tables of events in any order."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from callcenter.services.timeline import summarise

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@dataclass
class Ev:
    kind: str
    second: int
    seq: int
    node: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def at(self) -> datetime:
        return T0 + timedelta(seconds=self.second)


ROUTED = [
    Ev("ivr.node", 0, 0, "welcome"),
    Ev("ivr.node", 0, 1, "main_menu"),
    Ev("ivr.input", 3, 2, "main_menu", {"digits": "2", "outcome": "option"}),
    Ev("ivr.node", 3, 3, "route_complaint"),
    Ev("ivr.route", 3, 4, "route_complaint", {"queue": "complaint", "branch": "complaint", "priority": 10}),
]


def test_routed_call() -> None:
    summary = summarise(ROUTED)
    assert summary.ivr_path == ["welcome", "main_menu", "route_complaint"]
    assert (summary.queue_name, summary.ivr_branch, summary.priority) == ("complaint", "complaint", 10)
    assert summary.disposition == "queued"
    assert summary.started_at == T0 and summary.ended_at is None


def test_any_order_gives_the_same_summary() -> None:
    expected = summarise(ROUTED)
    for order in itertools.permutations(ROUTED):
        assert summarise(order) == expected


def test_hangup_in_the_menu() -> None:
    events = [*ROUTED[:2], Ev("ivr.hangup", 5, 2, "main_menu", {"reason": "caller hung up"})]
    summary = summarise(events)
    assert summary.disposition == "abandoned_in_ivr"
    assert summary.last_node == "main_menu"
    assert summary.ended_at == T0 + timedelta(seconds=5)
    assert summary.ivr_branch is None


def test_hangup_during_the_transfer_announcement_is_still_abandoned() -> None:
    events = [*ROUTED, Ev("ivr.hangup", 4, 5, "route_complaint")]
    assert summarise(events).disposition == "abandoned_in_ivr"


def test_fallback_routes_and_keeps_the_error() -> None:
    events = [
        *ROUTED[:2],
        Ev(
            "ivr.fallback",
            2,
            10_000,
            "main_menu",
            {"queue": "consultation", "branch": "error", "error": "boom"},
        ),
    ]
    summary = summarise(events)
    assert (summary.queue_name, summary.ivr_branch, summary.disposition) == (
        "consultation",
        "error",
        "queued",
    )
    assert summary.end_reason == "boom"


# --- AMI events (the captured queued call, tests/captures/ami-one-queue-call.jsonl) ---------


@dataclass
class Ami:
    kind: str
    at: datetime
    seq: int
    data: dict[str, Any] = field(default_factory=dict)
    node: str | None = None


def at(stamp: str) -> datetime:
    seconds, micros = stamp.split(".")
    return datetime.fromtimestamp(int(seconds), UTC) + timedelta(microseconds=int(micros))


CALLER = "Local/100@hotline-00000002;2"
AGENT = "Local/agent-consult@agents-00000003;1"
MEMBER = {"queue": "consultation", "interface": "Local/agent-consult@agents/n", "member": "Agent Consult"}
ANSWERED = [
    Ami(
        "queue.join", at("1795424089.948809"), 10, {"queue": "consultation", "position": 1, "channel": CALLER}
    ),
    Ami("agent.ringing", at("1795424089.948998"), 20, {**MEMBER, "channel": CALLER, "dest_channel": AGENT}),
    Ami(
        "agent.connect",
        at("1795424089.949905"),
        30,
        {**MEMBER, "channel": CALLER, "dest_channel": AGENT, "holdtime": 0, "ringtime": 0},
    ),
    Ami(
        "agent.complete",
        at("1795424094.968438"),
        50,
        {**MEMBER, "channel": CALLER, "dest_channel": AGENT, "holdtime": 0, "talktime": 5, "reason": "agent"},
    ),
    Ami("call.hangup", at("1795424094.968200"), 60, {"channel": "Local/agent-consult@agents-00000003;2"}),
    Ami("call.hangup", at("1795424094.968447"), 60, {"channel": AGENT}),
    Ami(
        "call.hangup",
        at("1795424094.968691"),
        60,
        {"channel": "Local/100@hotline-00000002;1", "first_leg": True},
    ),
    Ami("call.hangup", at("1795424094.968805"), 60, {"channel": CALLER}),
]


def test_an_answered_queue_call() -> None:
    summary = summarise([*ROUTED, *ANSWERED])
    assert summary.disposition == "answered"
    assert summary.queue_name == "consultation" and summary.ivr_branch == "complaint"
    assert summary.answered_at == at("1795424089.949905")
    assert (summary.wait_s, summary.talk_s) == (0, 5)
    assert (summary.agent_interface, summary.agent_name) == ("Local/agent-consult@agents/n", "Agent Consult")
    assert summary.ended_at == at("1795424094.968805")  # the last hang-up
    assert summary.hangup_side == "agent"


def test_every_order_of_the_ami_events_gives_the_same_summary() -> None:
    expected = summarise(ANSWERED)
    for order in itertools.permutations(ANSWERED):
        assert summarise(order) == expected


def test_duplicated_events_change_nothing() -> None:
    assert summarise([*ANSWERED, *ANSWERED[2:5]]) == summarise(ANSWERED)


def test_times_without_holdtime_and_talktime_come_from_the_timestamps() -> None:
    events = [
        Ami("queue.join", T0, 10, {"queue": "complaint"}),
        Ami("agent.connect", T0 + timedelta(seconds=42), 30, {"interface": "PJSIP/1001"}),
        Ami("call.hangup", T0 + timedelta(seconds=100), 60, {"channel": "PJSIP/1001-00000007"}),
    ]
    summary = summarise(events)
    assert (summary.wait_s, summary.talk_s, summary.agent_interface) == (42, 58, "PJSIP/1001")
    assert summary.hangup_side is None  # nothing tells which leg PJSIP/1001-00000007 is


def test_abandoned_in_the_queue() -> None:
    events = [
        *ROUTED,
        Ami("queue.join", T0 + timedelta(seconds=5), 10, {"queue": "complaint", "channel": CALLER}),
        Ami("call.hangup", T0 + timedelta(seconds=35), 60, {"channel": CALLER}),
        Ami("queue.abandon", T0 + timedelta(seconds=35), 50, {"queue": "complaint", "holdtime": 30}),
    ]
    summary = summarise(events)
    assert (summary.disposition, summary.wait_s, summary.hangup_side) == ("abandoned_in_queue", 30, "caller")
    assert summary.answered_at is None and summary.talk_s is None
    assert summary.ended_at == T0 + timedelta(seconds=35)
    assert summary.end_reason == "caller hung up in the queue"


def test_a_hangup_in_the_ivr_is_not_overridden_by_the_ami_hangup() -> None:
    events = [
        *ROUTED[:2],
        Ev("ivr.hangup", 5, 2, "main_menu", {"reason": "caller hung up"}),
        Ami(
            "call.hangup",
            T0 + timedelta(seconds=5, microseconds=300),
            60,
            {"channel": CALLER, "first_leg": True},
        ),
    ]
    summary = summarise(events)
    assert (summary.disposition, summary.end_reason) == ("abandoned_in_ivr", "caller hung up")
    assert summary.ended_at == T0 + timedelta(seconds=5, microseconds=300)
    assert summary.hangup_side == "caller"


def test_ended_in_ivr_stays_after_the_ami_hangup() -> None:
    events = [
        Ev("ivr.node", 0, 0, "closed"),
        Ev("ivr.end", 4, 1, "closed", {"reason": "closed"}),
        Ami("call.hangup", T0 + timedelta(seconds=4, microseconds=10), 60, {"channel": CALLER}),
    ]
    assert summarise(events).disposition == "ended_in_ivr"


def test_transfers_are_listed_in_time_order_whatever_the_arrival() -> None:
    blind = Ami("call.transfer", T0 + timedelta(seconds=50), 40, {"type": "blind", "exten": "8001"})
    attended = Ami("call.transfer", T0 + timedelta(seconds=20), 40, {"type": "attended", "exten": "8002"})
    complete = Ami("agent.complete", T0 + timedelta(seconds=50), 50, {"talktime": 30, "reason": "transfer"})
    for order in itertools.permutations([blind, attended, complete, *ANSWERED[:3]]):
        summary = summarise(order)
        assert [transfer["exten"] for transfer in summary.transfers] == ["8002", "8001"]
        assert summary.transfers[0]["at"] == (T0 + timedelta(seconds=20)).isoformat()
        assert summary.hangup_side == "transfer"


def test_an_outbound_call_never_answered_is_not_answered() -> None:
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

    class Ev:
        def __init__(self, kind: str, data: dict[str, object]) -> None:
            self.kind, self.at, self.seq, self.node, self.data = kind, start, 0, None, data

    summary = summarise([Ev("call.hangup", {"status": "no-answer", "duration": 0})])
    assert (summary.disposition, summary.end_reason) == ("not_answered", "no-answer")
