"""The dialler inside the scheduler process: its channel built from settings, bound once per leader.

``channel`` in ``[dialler]``: ``twilio`` (REST ``calls.create``), ``asterisk`` (AMI Originate on a
connection of its own that listens to call events only) or ``auto`` (Twilio when configured, else
Asterisk when ``ami.host`` is set, else no dialler: owed callbacks wait for agents).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from callcenter.db import Database
from callcenter.dialler.channels import AmiChannel, Channel, TwilioChannel, configured_channel
from callcenter.dialler.engine import Dialler, TickStats
from callcenter.dialler.lease import Lease
from callcenter.exceptions import ConfigurationError
from callcenter.settings import Settings
from callcenter.voice.ami.client import AmiClient
from callcenter.voice.twilio.rest import make_client

log = logging.getLogger(__name__)

TICK_BUDGET_S = 0.8  # of each 1 s run: dial at the paced instants, then return before the next run is due


class DiallerRuntime:
    """The running dialler and what it holds open (the AMI connection)."""

    def __init__(self, dialler: Dialler | None, closer: Callable[[], None] | None = None) -> None:
        self.dialler, self._closer = dialler, closer

    def tick(self) -> TickStats | None:
        return None if self.dialler is None else self.dialler.tick(TICK_BUDGET_S)

    def close(self) -> None:
        if self.dialler is not None:
            self.dialler.close()
        if self._closer is not None:
            self._closer()


def build_channel(
    settings: Settings, clock: Callable[[], datetime]
) -> tuple[Channel | None, Callable[[], None] | None]:
    dialler, choice = settings.dialler, configured_channel(settings)
    if choice == "twilio":
        client = make_client(settings)
        channel = TwilioChannel(
            client,
            settings,
            resolve_after_s=dialler.resolve_after_s,
            in_doubt_after_s=dialler.in_doubt_after_s,
        )
        return channel, None
    ami = settings.ami
    if choice == "asterisk":
        if not ami.host or ami.secret is None:
            raise ConfigurationError("dialler.channel=asterisk needs ami.host and CALLCENTER_AMI__SECRET")
        # OriginateResponse is a call event
        ami_client = AmiClient.from_settings(ami, clock=clock, events="call", name="ami-dialler")
        ami_client.start()
        return AmiChannel(ami_client, settings, in_doubt_after_s=dialler.in_doubt_after_s), ami_client.close
    return None, None


def build_dialling(
    settings: Settings, db: Database, clock: Callable[[], datetime], lease: Lease
) -> DiallerRuntime:
    channel, closer = build_channel(settings, clock)
    if channel is None:
        log.info("dialler: no outbound channel configured (Twilio or AMI); callbacks wait for agents")
        return DiallerRuntime(None)
    workers = 32  # dialling threads; AMI Originate holds one for the ring time
    return DiallerRuntime(Dialler(settings, db, clock, channel, lease, workers=workers), closer)
