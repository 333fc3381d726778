"""Presence on the PBX: AMI ``QueuePause`` of the agent's queue member in every queue.

An agent on break, on a call, in wrap-up or offline must not be offered calls (A5: calls go to available
agents); Asterisk's queues skip a paused member. Asterisk answers ``Response: Success`` ("Interface
paused successfully") or ``Error`` ("Interface not found") for a member in no queue. The action needs
the ``agent`` write class: without it Asterisk answers ``Error`` "Permission denied" (the client logs the
first such refusal once per process, with the manager.conf line to fix; later ones only at DEBUG).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime

from callcenter.settings import Ami
from callcenter.voice.ami.client import PERMISSION_DENIED, AmiClient, AmiError
from callcenter.voice.ami.redirect import RedirectResult, short_connection

log = logging.getLogger(__name__)

PAUSED_STATUSES = frozenset({"break", "on_call", "wrap_up", "offline"})


def member_interface(extension: str, template: str) -> str:
    """The queue member for an agent's extension: ``PJSIP/1001`` as is, ``1001`` through ``template``."""
    return extension if "/" in extension else template.format(extension=extension)


def queue_pause(client: AmiClient, interface: str, *, paused: bool, reason: str = "") -> RedirectResult:
    if not interface or any(ch in interface + reason for ch in "\r\n"):
        raise ValueError("interface and reason must be single lines")
    headers = {"Interface": interface, "Paused": "true" if paused else "false"}
    if reason:
        headers["Reason"] = reason
    try:
        response = client.send_action("QueuePause", headers)
    except AmiError as exc:
        return RedirectResult(False, str(exc))
    return RedirectResult(response.get("Response") == "Success", response.get("Message"))


def sync_presence(
    settings: Ami, clock: Callable[[], datetime], interface: str, status: str
) -> threading.Thread | None:
    """Pause or unpause ``interface`` for ``status`` in the background (a short AMI connection); the
    presence change itself never waits for the PBX. None when no AMI is configured."""
    if not settings.host or settings.secret is None:
        return None

    def run() -> None:
        paused = status in PAUSED_STATUSES
        try:
            with short_connection(settings, clock) as client:
                result = queue_pause(client, interface, paused=paused, reason=status if paused else "")
        except AmiError as exc:
            log.warning("presence %s of %s not sent to Asterisk: %s", status, interface, exc)
            return
        _log_result(interface, result)

    thread = threading.Thread(target=run, name="ami-queuepause", daemon=True)
    thread.start()
    return thread


def _log_result(interface: str, result: RedirectResult) -> None:
    if result.message == PERMISSION_DENIED:
        log.debug("QueuePause of %s refused: %s", interface, result.message)  # logged once by the client
    elif not result.ok:
        log.warning("QueuePause of %s refused: %s", interface, result.message)


class QueuePauser:
    """``QueuePause`` on an open connection (the AMI listener's own client), one at a time in order,
    on a worker thread: the listener's event dispatch never waits for Asterisk's answer."""

    def __init__(self, client: AmiClient) -> None:
        self.client = client
        self._queue: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __call__(self, interface: str, status: str) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ami-queuepause", daemon=True)
                self._thread.start()
        self._queue.put((interface, status))

    def close(self, timeout: float = 2.0) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            interface, status = item
            paused = status in PAUSED_STATUSES
            try:
                result = queue_pause(self.client, interface, paused=paused, reason=status if paused else "")
            except (AmiError, ValueError) as exc:
                log.warning("presence %s of %s not sent to Asterisk: %s", status, interface, exc)
                continue
            _log_result(interface, result)
