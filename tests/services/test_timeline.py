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
