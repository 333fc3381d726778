"""Wiring of the AMI listener/originator: settings → client, listener (recorder, bus) → running service.

``callcenter agi`` and ``callcenter serve`` run it next to the FastAGI server when ``ami.host`` is set
(``running_ami``); it stops with them (SIGTERM/SIGINT stop the server, then the AMI connection is
logged off and closed). After each login the service checks, off the reader thread, that the AMI user
may run the actions the service sends (``AmiClient.check_permissions``): a missing ``write`` class is one
WARNING naming it and the manager.conf line to fix, logged again only if the answer changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from callcenter.db import Database
from callcenter.events import Bus, LocalBus
from callcenter.exceptions import ConfigurationError
from callcenter.services import calls
from callcenter.services.agent_states import CallPresence
from callcenter.services.journal import recorder_for
from callcenter.settings import Settings
from callcenter.voice.ami.client import AmiClient, AmiError, Backoff
from callcenter.voice.ami.listener import AmiListener
from callcenter.voice.ami.originate import OriginateResult, originate
from callcenter.voice.ami.pause import QueuePauser
from callcenter.voice.ami.states import AgentStates

log = logging.getLogger(__name__)


class AmiService:
    """The running AMI connection with the listener attached; ``originate`` for outbound calls."""

    def __init__(
        self,
        settings: Settings,
        client: AmiClient,
        listener: AmiListener,
        pauser: QueuePauser | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.listener = listener
        self.pauser = pauser
        self.permissions: dict[str, list[str]] | None = None  # missing write classes, once checked
        self.permissions_checked = threading.Event()
        client.add_handler(listener)
        client.on_connect(self._check_permissions_soon)

    def _check_permissions_soon(self) -> None:
        # on_connect runs on the reader thread before it reads: the answer must be awaited elsewhere.
        threading.Thread(target=self._check_permissions, name="ami-permissions", daemon=True).start()

    def _check_permissions(self) -> None:
        try:
            missing = self.client.missing_write_classes()
        except AmiError as exc:  # a lost connection: the next login checks again
            log.warning("AMI permissions of %r not checked: %s", self.client.username, exc)
            return
        if missing != self.permissions:
            self.client.report_permissions(missing)
        self.permissions = missing
        self.permissions_checked.set()

    def start(self) -> None:
        self.client.start()
        log.info("AMI listener started for %s:%s", self.client.host, self.client.port)

    def stop(self, timeout: float = 2.0) -> None:
        self.client.close(timeout)
        if self.pauser is not None:
            self.pauser.close(timeout)
        self.listener.recorder.close()  # what the listener handed over is in the database or spool
        log.info("AMI listener stopped")

    def originate(self, number: str, **options: Any) -> OriginateResult:
        return originate(self.client, self.settings.ami, number, **options)

    def __enter__(self) -> AmiService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build_ami(
    settings: Settings,
    db: Database,
    clock: Callable[[], datetime],
    *,
    bus: Bus | None = None,
    backoff: Backoff | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> AmiService | None:
    """The AMI service, or None when ``ami.host`` is empty (the listener is off)."""
    ami = settings.ami
    if not ami.host:
        return None
    if ami.secret is None or not ami.secret.get_secret_value():
        raise ConfigurationError("ami.host is set but the AMI secret is not: set CALLCENTER_AMI__SECRET")
    client = AmiClient(
        ami.host,
        ami.port,
        ami.username,
        ami.secret.get_secret_value(),
        clock=clock,
        connect_timeout_s=ami.connect_timeout_s,
        action_timeout_s=ami.action_timeout_s,
        backoff=backoff or Backoff(ami.reconnect_min_s, ami.reconnect_max_s),
        **dict(client_options or {}),
    )

    def on_record(linkedid: str) -> bool:
        with db.read() as session:
            return calls.exists(session, "asterisk", linkedid)

    listener = AmiListener(
        recorder_for(settings, db, clock),
        bus if bus is not None else LocalBus(),
        settings.storage.asterisk_monitor_dir,
        clock,
        settings.zone,
        on_record=on_record,
    )
    # The agents' presence follows the call; queue pauses go out on this very connection.
    pauser = QueuePauser(client)
    listener.on_call_state = AgentStates(
        CallPresence(db, settings.console, settings.zone, clock),
        member_template=settings.console.member_interface,
        pause=pauser,
        bus=listener.bus,
    )
    return AmiService(settings, client, listener, pauser)


@contextmanager
def running_ami(service: AmiService | None) -> Iterator[AmiService | None]:
    """Run the AMI service (from :func:`build_ami`) for the duration of the block; None does nothing."""
    if service is None:
        yield None
        return
    service.start()
    try:
        yield service
    finally:
        service.stop()
