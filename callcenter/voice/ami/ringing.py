"""A queue ringing an agent, as Asterisk's AMI reports it: for ``simulate-call --agent`` and tests.

``ring_agent`` builds the ``QueueCallerJoin``, ``AgentCalled`` and ``AgentConnect`` events Asterisk 22
sends, in that order (tests/captures/scenarios/answered-consultation), when a caller joins the queue,
the queue offers the call to member ``PJSIP/<extension>`` and the agent answers, runs them through
the listener's own mapping (``map_event``) onto the contact record, publishes their screen-pops on
``bus`` and, with ``on_call_state``, moves the agent's presence as the listener would (on a call; no
queue pause): with the database outbox or Redis as the bus, the card pops in the browser of a web
server in another process (``make run``'s server reads the outbox).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from callcenter.db import Database
from callcenter.events import SCREEN_POP, Bus, Event
from callcenter.services.calls import record_call
from callcenter.voice.ami.listener import Report, map_event
from callcenter.voice.ami.protocol import Message


@dataclass(frozen=True)
class Ring:
    linkedid: str
    extension: str
    queue: str
    caller_number: str
    caller_name: str
    hold_s: int = 5
    ring_s: int = 2


def _events(ring: Ring, at: datetime) -> list[Message]:
    stamp = f"{at.timestamp():.6f}"
    caller_channel = f"PJSIP/trunk-{ring.linkedid.replace('.', '')}"
    agent_channel = f"PJSIP/{ring.extension}-{ring.linkedid.replace('.', '')}"
    common = [
        ("Privilege", "agent,all"),
        ("Timestamp", stamp),
        ("Channel", caller_channel),
        ("CallerIDNum", ring.caller_number),
        ("CallerIDName", ring.caller_name),
        ("Uniqueid", ring.linkedid),
        ("Linkedid", ring.linkedid),
        ("DestChannel", agent_channel),
        ("DestUniqueid", ring.linkedid + "1"),
        ("DestLinkedid", ring.linkedid),
        ("Queue", ring.queue),
        ("Interface", f"PJSIP/{ring.extension}"),
        ("MemberName", ring.extension),
    ]
    join = Message(
        (
            ("Event", "QueueCallerJoin"),
            *[(key, value) for key, value in common if not key.startswith(("Dest", "Interface", "Member"))],
            ("Position", "1"),
            ("Count", "1"),
        )
    )
    called = Message((("Event", "AgentCalled"), *common))
    connect = Message(
        (
            ("Event", "AgentConnect"),
            *common,
            ("HoldTime", str(ring.hold_s)),
            ("RingTime", str(ring.ring_s)),
        )
    )
    return [join, called, connect]


def ring_agent(
    ring: Ring,
    db: Database,
    bus: Bus,
    clock: Callable[[], datetime],
    *,
    region: str,
    monitor_dir: str,
    answer_after_s: float = 1.0,
    on_call_state: Callable[[Report, int | None], None] | None = None,
) -> int | None:
    """Ring the agent, answer after ``answer_after_s``; returns the call's id. ``on_call_state`` is
    told of each report as the listener's hook would be (the agent's presence)."""
    call_id: int | None = None
    for index in range(3):
        if index == 2:
            time.sleep(answer_after_s)
        report = map_event(_events(ring, clock())[index], monitor_dir=monitor_dir, clock=clock)
        if report is None:
            continue
        with db.transaction() as session:
            call_id = record_call(session, report.seen, report.entries, region=region, now=clock()).id
        if report.screen_pop is not None:
            bus.publish(Event(SCREEN_POP, {**report.screen_pop, "call_id": call_id}))
        if on_call_state is not None:
            on_call_state(report, call_id)
    return call_id
