"""Blind transfer on Asterisk: AMI ``Redirect`` of the caller's channel to a dialplan target.

The agent's leg is not named (no ``ExtraChannel``): Redirect takes the caller out of the bridge and
the agent's channel, left alone in it, hangs up as after any call. Asterisk answers ``Response:
Success`` ("Redirect successful") or ``Error`` ("Channel does not exist: …" once the caller hung up).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from callcenter.settings import Ami
from callcenter.voice.ami.client import PERMISSION_DENIED, AmiClient, AmiError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedirectResult:
    ok: bool
    message: str


def _safe(value: str) -> bool:
    return bool(value) and not any(ch in value for ch in "\r\n")


def redirect(
    client: AmiClient,
    channel: str,
    context: str,
    exten: str,
    *,
    priority: int = 1,
    timeout: float | None = None,
) -> RedirectResult:
    """Send ``channel`` to ``context``/``exten``/``priority``; never raises for Asterisk's refusal."""
    if not all(_safe(value) for value in (channel, context, exten)):
        raise ValueError("channel, context and exten must be non-empty single lines")
    headers = {"Channel": channel, "Context": context, "Exten": exten, "Priority": str(priority)}
    try:
        response = client.send_action("Redirect", headers, timeout=timeout)
    except AmiError as exc:
        log.warning("redirect of %s not sent: %s", channel, exc)
        return RedirectResult(False, str(exc))
    ok = response.get("Response") == "Success"
    if not ok:
        # A missing write class is logged once by the client, with the fix; not once per transfer.
        level = logging.DEBUG if response.get("Message") == PERMISSION_DENIED else logging.WARNING
        log.log(level, "redirect of %s refused: %s", channel, response.get("Message"))
    return RedirectResult(ok, response.get("Message"))


@contextmanager
def short_connection(settings: Ami, clock: Callable[[], datetime]) -> Iterator[AmiClient]:
    """A connection for one action from a process that holds none (a web worker): log in, act, log off.

    Raises :class:`AmiError` when the AMI cannot be reached in ``connect_timeout_s``.
    """
    if not settings.host or settings.secret is None:
        raise AmiError("AMI is not configured (ami.host and CALLCENTER_AMI__SECRET)")
    client = AmiClient.from_settings(settings, clock=clock, events="off", name="ami-action")
    client.start()
    try:
        if not client.wait_connected(settings.connect_timeout_s):
            raise AmiError(f"AMI at {settings.host}:{settings.port} not reachable: {client.last_error}")
        yield client
    finally:
        client.close()
