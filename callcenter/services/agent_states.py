"""Presence follows the call, in the process that hears the PBX (AMI listener, Twilio webhooks).

A call connecting to an agent makes them ``on_call``; its end (the agent's leg completed, or the
caller hung up) puts them in ``wrap_up`` until the wrap-up is submitted (the rules are in
``services/wrapup.py``). Nothing here depends on a browser tab being open. ``CallPresence`` finds the
call by its channel and external id when the voice layer has no call id (the report was spooled or is
still queued) and the agent by the queue member interface or its id; it returns the changes made, so
the caller can tell the PBX (Asterisk's ``QueuePause``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db import Database
from callcenter.models import Agent, Call
from callcenter.services import wrapup
from callcenter.services.members import agent_for_interface
from callcenter.settings import Console

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentChange:
    agent_id: int
    status: str
    extension: str | None
    call_id: int

    def payload(self) -> dict[str, Any]:
        """The ``PRESENCE`` event's payload: routed to the agent's consoles by ``agent_id``."""
        return {"agent_id": self.agent_id, "status": self.status, "call_id": self.call_id}


@dataclass
class CallPresence:
    db: Database
    console: Console
    zone: ZoneInfo
    clock: Callable[[], datetime]

    def connected(
        self, channel: str, external_id: str, *, call_id: int | None, agent_id: int | None, interface: str
    ) -> AgentChange | None:
        """The call connected to the agent (named by id, else by member interface)."""
        with self.db.transaction() as session:
            found = self._call_id(session, channel, external_id, call_id)
            agent = agent_id if agent_id is not None else agent_for_interface(session, interface)
            if found is None or agent is None:
                log.warning(
                    "presence: call %s connected to %s, but %s",
                    external_id,
                    interface or agent_id,
                    "the call is not on record" if found is None else "no agent has that member",
                )
                return None
            status = wrapup.call_connected(
                session, agent, found, now=self.clock(), console=self.console, zone=self.zone
            )
            return self._change(session, agent, status, found)

    def ended(
        self,
        channel: str,
        external_id: str,
        *,
        call_id: int | None,
        agent_id: int | None = None,
        interface: str = "",
    ) -> list[AgentChange]:
        """The call ended for one agent (named), or for every agent on it (the caller hung up)."""
        with self.db.transaction() as session:
            found = self._call_id(session, channel, external_id, call_id)
            if found is None:
                return []
            if agent_id is None and interface:
                agent_id = agent_for_interface(session, interface)
            agents = [agent_id] if agent_id is not None else wrapup.agents_on_call(session, found)
            changes = []
            for agent in agents:
                status = wrapup.call_ended(
                    session, agent, found, now=self.clock(), console=self.console, zone=self.zone
                )
                change = self._change(session, agent, status, found)
                if change is not None:
                    changes.append(change)
            return changes

    @staticmethod
    def _call_id(session: Session, channel: str, external_id: str, call_id: int | None) -> int | None:
        if call_id is not None:
            return call_id
        query = select(Call.id).where(Call.channel == channel, Call.external_id == external_id)
        return session.execute(query).scalar_one_or_none()

    @staticmethod
    def _change(session: Session, agent_id: int, status: str | None, call_id: int) -> AgentChange | None:
        if status is None:
            return None
        extension = session.execute(select(Agent.extension).where(Agent.id == agent_id)).scalar_one_or_none()
        return AgentChange(agent_id, status, extension, call_id)


class Background:
    """Presence changes one at a time, in order, on a worker thread: a webhook's answer never waits
    for them (nor for a database that is slow or locked)."""

    def __init__(self, name: str = "presence") -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], object]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every job submitted so far has run (tests)."""
        done = threading.Event()
        self.submit(done.set)
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:
                log.exception("presence change failed")
