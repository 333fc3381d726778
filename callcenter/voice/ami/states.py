"""Presence from the AMI events: the call, not the browser tab, moves the agent (F60, B14).

``AgentStates`` is the listener's ``on_call_state`` hook, called after an event's report is recorded:
``AgentConnect`` makes the member's agent ``on_call``; ``AgentComplete`` (the agent's leg ended) or
the caller's own hang-up (``Hangup`` of the call's first leg) puts them in ``wrap_up``. Each change
is sent to Asterisk as ``QueuePause`` of the member through ``pause`` (the listener's own connection,
``pause.QueuePauser``), so the queue offers the agent no call until the wrap-up is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from callcenter.events import PRESENCE, Bus, Event
from callcenter.services.agent_states import AgentChange, CallPresence
from callcenter.voice.ami.pause import member_interface

if TYPE_CHECKING:
    from callcenter.voice.ami.listener import Report

log = logging.getLogger(__name__)

CHANNEL = "asterisk"


class AgentStates:
    def __init__(
        self,
        presence: CallPresence,
        *,
        member_template: str,
        pause: Callable[[str, str], None] | None = None,
        bus: Bus | None = None,
    ) -> None:
        self.presence, self.member_template, self.pause = presence, member_template, pause
        self.bus = bus  # tells the agent's open console (PRESENCE), whichever web process serves it

    def __call__(self, report: Report, call_id: int | None) -> None:
        linkedid = report.seen.external_id
        for entry in report.entries:
            interface = str(entry.data.get("interface") or "")
            if entry.kind == "agent.connect":
                change = self.presence.connected(
                    CHANNEL, linkedid, call_id=call_id, agent_id=None, interface=interface
                )
                self._tell_pbx([change] if change else [], interface)
            elif entry.kind == "agent.complete":
                changes = self.presence.ended(CHANNEL, linkedid, call_id=call_id, interface=interface)
                self._tell_pbx(changes, interface)
            elif entry.kind == "call.hangup" and entry.data.get("first_leg"):
                self._tell_pbx(self.presence.ended(CHANNEL, linkedid, call_id=call_id), "")

    def _tell_pbx(self, changes: list[AgentChange], interface: str) -> None:
        for change in changes:
            log.info("agent %s is %s (call %s)", change.agent_id, change.status, change.call_id)
            if self.bus is not None:
                self.bus.publish(Event(PRESENCE, change.payload()))
            if self.pause is None:
                continue
            member = interface or (
                member_interface(change.extension, self.member_template) if change.extension else ""
            )
            if member:
                self.pause(member, change.status)
