"""The agent console: live screen-pops, presence, wrap-up, transfers, and the team leader's shift.

``install`` wires it into an app: the screen-pop hub listens on the app's LocalBus; the relays that
bring events from other processes (database outbox or Redis) start with the first stream, so an app
that never serves one (tests, a worker with no agent yet) runs no extra thread, and gunicorn's workers
start their own after the fork. Signing in starts the agent's presence (available, with the shift and
the late flag); signing out ends it (offline).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from flask_login import user_logged_in, user_logged_out

from callcenter.events import PRESENCE, SCREEN_POP, Relay, relays_for
from callcenter.services import presence
from callcenter.voice.ami.pause import member_interface, sync_presence
from web.console.hub import ScreenPopHub
from web.context import WebContext

log = logging.getLogger(__name__)

EXTENSION_KEY = "console"


@dataclass
class ConsoleRuntime:
    context: WebContext
    clock: Callable[[], datetime]
    hub: ScreenPopHub
    relays: list[Relay] = field(default_factory=list)
    receivers: list[Callable[..., None]] = field(default_factory=list)  # blinker holds them weakly
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started: bool = False

    def ensure_relays(self) -> None:
        """Start the relays once, from the first stream of this process."""
        with self._lock:
            if self._started:
                return
            self._started = True
            self.relays = relays_for(self.context.settings, self.context.db, self.context.bus, self.clock)
            for relay in self.relays:
                relay.start()

    def wait_ready(self, timeout: float) -> bool:
        return all(relay.ready.wait(timeout) for relay in self.relays)

    def stop(self) -> None:
        for relay in self.relays:
            relay.stop()


def push_presence(state: ConsoleRuntime, extension: str | None, status: str) -> None:
    """Tell Asterisk (when configured) to pause or unpause the agent's queue member (background)."""
    if not extension:
        return
    settings = state.context.settings
    interface = member_interface(extension, settings.console.member_interface)
    sync_presence(settings.ami, state.clock, interface, status)


def runtime() -> ConsoleRuntime:
    value = current_app.extensions[EXTENSION_KEY]
    assert isinstance(value, ConsoleRuntime)
    return value


def _sign_on(runtime: ConsoleRuntime, status: str) -> Callable[..., None]:
    def handler(sender: Flask, user: Any = None, **_: Any) -> None:
        if sender.extensions.get(EXTENSION_KEY) is not runtime or user is None:
            return
        context, now = runtime.context, runtime.clock()
        try:
            with context.db.transaction() as session:
                agent = presence.agent_of_user(session, int(user.id))
                if agent is None:
                    return
                presence.set_presence(
                    session,
                    agent.id,
                    status,
                    now=now,
                    console=context.settings.console,
                    zone=context.settings.zone,
                    by_user_id=int(user.id),
                )
                extension = agent.extension
            push_presence(runtime, extension, status)
        except Exception:  # signing in or out must not fail for the presence log
            log.exception("presence %s not recorded for user %s", status, getattr(user, "id", "?"))

    return handler


def install(app: Flask, context: WebContext, clock: Callable[[], datetime]) -> ConsoleRuntime:
    from web.console.views import bp  # noqa: PLC0415 (the views import this module)

    hub = ScreenPopHub(max_streams=context.settings.console.max_streams)
    context.bus.subscribe(SCREEN_POP, hub.on_event)
    context.bus.subscribe(PRESENCE, hub.on_event)
    state = ConsoleRuntime(context, clock, hub)
    app.extensions[EXTENSION_KEY] = state
    state.receivers = [_sign_on(state, "available"), _sign_on(state, "offline")]
    user_logged_in.connect(state.receivers[0], app)
    user_logged_out.connect(state.receivers[1], app)
    app.register_blueprint(bp)
    return state
