"""A small AMI client on plain sockets, written for threads and long runs.

Why not ``asterisk.manager`` (pyst2 0.5.1)? Its faults sit in the core every subclass would inherit:
the message parser (``dict.has_key`` on a ``ChanVariable`` header raises inside the reader thread, so
every later action waits forever), the action path (a mutable default dict shares one ActionID between
keyword-only calls; responses go to whichever thread waits first instead of by ActionID), the event
thread (one raising callback ends dispatch), the connection (reconnecting raises, ``close()`` can block
forever on a silent server, one-byte reads through a socket file cap it near 3,700 events/s) and the
framing (``command()`` keeps the last output line; events after ``Status``/``QueueStatus`` are glued into
the response). Fixing all of those means replacing ``_receive_data``, ``message_loop``,
``event_dispatch``, ``send_action``, ``connect``, ``close`` and ``ManagerMsg.parse``, that is all of it, so
we keep pyst2 for FastAGI only and this module reuses nothing of it at run time. What it does instead:

* one reader thread per connection with buffered ``recv`` (64 KiB) and an incremental parser that keeps
  repeated headers (``protocol.Parser``);
* every action gets a fresh ActionID (``<prefix>-<counter>``) and a waiter keyed by it; a response is
  only ever handed to the waiter with the same ActionID; list actions (``QueueStatus``, ``Status``…)
  collect their own events until ``EventList: Complete`` while unrelated events are dispatched normally;
* events go through a queue to one dispatcher thread; a handler that raises is logged and dispatch
  goes on (also for the other handlers of the same event);
* the connection is kept up by a supervisor thread: connect, log in (``Events: on``), read; on any drop
  it waits with exponential backoff (``reconnect_min_s`` … ``reconnect_max_s``, ±20 % jitter) and
  starts again. The gap between the last event before a drop and the first one after it is logged at
  WARNING and kept in ``gaps``;
* ``close()`` sends a best-effort ``Logoff`` without waiting, shuts the socket down and joins the
  threads with a bound, so it returns promptly even when the server went silent;
* permissions: ``missing_write_classes`` asks Asterisk (``ListCommands``) which of the actions the
  service sends this user may run, and the first ``Permission denied`` answer to each action is logged
  once per process at WARNING with the manager.conf line to fix.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import random
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from callcenter.settings import Ami as AmiSettings
from callcenter.voice.ami.protocol import HeaderValue, Message, Parser, ProtocolError, encode

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Handler = Callable[[Message], None]
READ_SIZE = 65536


# The manager.conf ``write =`` class Asterisk 22 requires for each action the service sends (the
# action's authority: main/manager.c, apps/app_queue.c; one class of it is enough), and what for.
ACTION_CLASSES: dict[str, str] = {"Originate": "originate", "Redirect": "call", "QueuePause": "agent"}
ACTION_USES: dict[str, str] = {
    "Originate": "outbound callbacks and surveys",
    "Redirect": "transfers to a department",
    "QueuePause": "pausing agents on break, in wrap-up or offline (else queues keep offering them calls)",
}
WRITE_LINE = "write = " + ",".join(dict.fromkeys(ACTION_CLASSES.values()))
PERMISSION_DENIED = "Permission denied"


class AmiError(Exception):
    """An action could not be completed (not connected, connection lost, no answer in time)."""


class AmiAuthError(AmiError):
    """Asterisk refused the login."""


class AmiTimeout(AmiError):
    """No response to an action within its timeout."""


class Backoff:
    """Exponential backoff with jitter: min_s, 2·min_s, 4·min_s … up to max_s."""

    def __init__(
        self,
        min_s: float,
        max_s: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.2,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.min_s, self.max_s, self.factor, self.jitter, self._rand = (
            min_s,
            max(max_s, min_s),
            factor,
            jitter,
            rand,
        )
        self._attempt = 0

    def next(self) -> float:
        base = min(self.max_s, self.min_s * self.factor**self._attempt)
        self._attempt += 1
        spread = base * self.jitter * (2 * self._rand() - 1)
        return max(0.0, min(self.max_s, base + spread))

    def reset(self) -> None:
        self._attempt = 0


@dataclass(frozen=True)
class Gap:
    """A time without events: the connection dropped at some point after ``last_event_at``."""

    last_event_at: datetime | None
    first_event_at: datetime
    seconds: float | None
    reconnects: int


@dataclass
class Stats:
    connects: int = 0
    attempts: int = 0
    drops: int = 0
    reads: int = 0
    bytes: int = 0
    events: int = 0
    responses: int = 0
    handler_errors: int = 0
    retry_delays: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class ListResult:
    response: Message
    events: tuple[Message, ...]


class _Waiter:
    """Where a response (and, for list actions, its events) is delivered by ActionID."""

    def __init__(self, *, collect: bool = False, event: str | None = None) -> None:
        self.done = threading.Event()
        self.collect = collect
        self.event = event  # wait for this event (with the ActionID) rather than a response
        self.response: Message | None = None
        self.events: list[Message] = []
        self.error: AmiError | None = None

    def finish(self, error: AmiError | None = None) -> None:
        self.error = self.error or error
        self.done.set()


class EventWaiter:
    """Handle returned by :meth:`AmiClient.expect_event`: ``wait()`` for the event, or ``cancel()``."""

    def __init__(self, client: AmiClient, action_id: str, waiter: _Waiter) -> None:
        self.client, self.action_id, self._waiter = client, action_id, waiter

    def wait(self, timeout: float) -> Message | None:
        """The event, or None if it did not come in time (or the connection was lost)."""
        self._waiter.done.wait(timeout)
        self.cancel()
        return self._waiter.response

    def cancel(self) -> None:
        self.client._forget_event_waiter(self.action_id, self._waiter)


def is_permission_denied(response: Message) -> bool:
    """Asterisk's answer to an action the user's ``write`` classes do not cover."""
    return response.get("Response") == "Error" and response.get("Message") == PERMISSION_DENIED


def fix_hint(username: str, classes: list[str]) -> str:
    names = ", ".join(repr(name) for name in classes)
    return (
        f"add {names} to the write line of [{username}] in manager.conf ({WRITE_LINE}) "
        "and run 'manager reload' on Asterisk"
    )


class RefusalLog:
    """Logs the first ``Permission denied`` of each action once per process, whatever the connection
    (the web's presence changes use a short connection per action)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str]] = set()

    def report(self, action: str, username: str, host: str) -> bool:
        """Log the refusal unless this action was already reported; True if it was logged now."""
        with self._lock:
            if (username, action) in self._seen:
                return False
            self._seen.add((username, action))
        needed = ACTION_CLASSES.get(action)
        use = f" ({ACTION_USES[action]})" if action in ACTION_USES else ""
        hint = fix_hint(username, [needed]) if needed else "check its write classes in manager.conf"
        log.warning(
            "AMI user %r on %s may not run %s%s: Asterisk answered %r; %s. Further refusals of %s "
            "are not logged again",
            username,
            host,
            action,
            use,
            PERMISSION_DENIED,
            hint,
            action,
        )
        return True

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()


refusals = RefusalLog()


class AmiClient:
    """A logged-in AMI connection that reconnects by itself. Thread-safe for actions."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        clock: Clock,
        connect_timeout_s: float = 5.0,
        action_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        keepalive_s: float = 20.0,
        events: str = "on",
        name: str = "ami",
    ) -> None:
        self.host, self.port, self.username = host, port, username
        self._secret = secret
        self.clock = clock
        self.connect_timeout_s, self.action_timeout_s, self.keepalive_s = (
            connect_timeout_s,
            action_timeout_s,
            keepalive_s,
        )
        self.backoff = backoff or Backoff(0.5, 30.0)
        self.events_mask = events
        self.name = name
        self.banner: str | None = None
        self.stats = Stats()
        self.gaps: list[Gap] = []
        self.last_error: str | None = None
        self.last_event_at: datetime | None = None
        self._handlers: list[Handler] = []
        self._connect_handlers: list[Callable[[], None]] = []
        self._ids = itertools.count(1)
        self._prefix = f"cc-{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()  # waiters, socket reference
        self._send_lock = threading.Lock()
        self._waiters: dict[str, _Waiter] = {}
        self._event_waiters: dict[str, _Waiter] = {}
        self._sock: socket.socket | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._events: queue.Queue[Message | threading.Event | None] = queue.Queue()
        self._parser = Parser()
        self._pending_gap: datetime | bool | None = False  # False: no gap open
        self._supervisor: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None

    # --- public API ------------------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls,
        ami: AmiSettings,
        *,
        clock: Clock,
        backoff: Backoff | None = None,
        events: str = "on",
        name: str = "ami",
        keepalive_s: float = 20.0,
    ) -> AmiClient:
        """A client for the configured AMI (``[ami]``); the caller checks host and secret first."""
        if not ami.host or ami.secret is None:
            raise ValueError("ami.host and the AMI secret are needed")
        return cls(
            ami.host,
            ami.port,
            ami.username,
            ami.secret.get_secret_value(),
            clock=clock,
            connect_timeout_s=ami.connect_timeout_s,
            action_timeout_s=ami.action_timeout_s,
            backoff=backoff or Backoff(ami.reconnect_min_s, ami.reconnect_max_s),
            keepalive_s=keepalive_s,
            events=events,
            name=name,
        )

    def add_handler(self, handler: Handler) -> None:
        """Call ``handler(message)`` for every event, in arrival order, on the dispatcher thread."""
        self._handlers.append(handler)

    def on_connect(self, handler: Callable[[], None]) -> None:
        """Called (on the supervisor thread) after each successful login."""
        self._connect_handlers.append(handler)

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def start(self) -> None:
        """Connect in the background; reconnects until :meth:`close`."""
        if self._supervisor is not None:
            return
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name=f"{self.name}-dispatch", daemon=True
        )
        self._supervisor = threading.Thread(target=self._run, name=f"{self.name}-reader", daemon=True)
        self._dispatcher.start()
        self._supervisor.start()

    def close(self, timeout: float = 2.0) -> None:
        """Stop reading and reconnecting; returns within about ``timeout`` even if Asterisk is silent."""
        self._stop.set()
        sock = self._sock
        if sock is not None and self._ready.is_set() and self._send_lock.acquire(timeout=0.2):
            try:
                sock.settimeout(0.2)
                sock.sendall(encode({"Action": "Logoff", "ActionID": self.next_action_id()}))
            except OSError:
                pass
            finally:
                self._send_lock.release()
        self._drop_socket()
        self._events.put(None)
        for thread in (self._supervisor, self._dispatcher):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)

    def next_action_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def send_action(
        self,
        action: str,
        headers: Mapping[str, HeaderValue] | None = None,
        *,
        action_id: str | None = None,
        timeout: float | None = None,
    ) -> Message:
        """Send one action and return its response (matched by ActionID). Raises :class:`AmiError`."""
        waiter = _Waiter()
        action_id = self._send(action, headers, waiter, action_id)
        response = self._await(action_id, waiter, timeout).response
        assert response is not None
        if is_permission_denied(response):
            refusals.report(action, self.username, f"{self.host}:{self.port}")
        return response

    def send_list_action(
        self,
        action: str,
        headers: Mapping[str, HeaderValue] | None = None,
        *,
        timeout: float | None = None,
    ) -> ListResult:
        """An action answered by a response, events with its ActionID, then ``EventList: Complete``."""
        waiter = _Waiter(collect=True)
        action_id = self._send(action, headers, waiter, None)
        self._await(action_id, waiter, timeout)
        assert waiter.response is not None
        return ListResult(waiter.response, tuple(waiter.events))

    def command(self, command: str, *, timeout: float | None = None) -> list[str]:
        """A CLI command; every output line (``Output:`` headers, or the old ``Follows`` body)."""
        response = self.send_action("Command", {"Command": command}, timeout=timeout)
        if response.get("Response") == "Error":
            raise AmiError(f"command {command!r} failed: {response.get('Message')}")
        lines = response.getall("Output")
        for line in response.data:
            lines.extend(part for part in line.split("\n") if part.strip() != "--END COMMAND--")
        return lines

    def permitted_actions(self, *, timeout: float | None = None) -> set[str]:
        """The actions this user may run: Asterisk's ``ListCommands`` lists only those its ``write``
        classes cover (and those needing none). Raises :class:`AmiError`."""
        response = self.send_action("ListCommands", timeout=timeout)
        if response.get("Response") != "Success":
            raise AmiError(f"ListCommands failed: {response.get('Message')}")
        return {name for name, _ in response.headers if name not in ("Response", "ActionID", "Message")}

    def missing_write_classes(self, *, timeout: float | None = None) -> dict[str, list[str]]:
        """The write classes this user lacks, each with the actions of ours it blocks (empty: all fine)."""
        permitted = self.permitted_actions(timeout=timeout)
        missing: dict[str, list[str]] = {}
        for action, needed in ACTION_CLASSES.items():
            if action not in permitted:
                missing.setdefault(needed, []).append(action)
        return missing

    def check_permissions(self, *, timeout: float | None = None) -> dict[str, list[str]] | None:
        """Log one WARNING naming each missing write class and the manager.conf line to fix (INFO when
        none is missing); None when the check itself could not run (logged too)."""
        try:
            missing = self.missing_write_classes(timeout=timeout)
        except AmiError as exc:
            log.warning("AMI permissions of %r not checked: %s", self.username, exc)
            return None
        self.report_permissions(missing)
        return missing

    def report_permissions(self, missing: Mapping[str, list[str]]) -> None:
        """The log line for a :meth:`missing_write_classes` answer."""
        if not missing:
            log.info("AMI user %r may run %s", self.username, ", ".join(ACTION_CLASSES))
            return
        blocked = "; ".join(
            f"{needed!r} for {', '.join(f'{action} ({ACTION_USES[action]})' for action in actions)}"
            for needed, actions in missing.items()
        )
        log.warning(
            "AMI user %r on %s:%s lacks the write class %s: %s",
            self.username,
            self.host,
            self.port,
            blocked,
            fix_hint(self.username, list(missing)),
        )

    def expect_event(self, action_id: str, event: str) -> EventWaiter:
        """Register interest in ``event`` carrying ``action_id`` (e.g. OriginateResponse) before sending."""
        waiter = _Waiter(event=event)
        with self._lock:
            self._event_waiters[action_id] = waiter
        return EventWaiter(self, action_id, waiter)

    # --- actions plumbing ------------------------------------------------------------------------

    def _send(
        self, action: str, headers: Mapping[str, HeaderValue] | None, waiter: _Waiter, action_id: str | None
    ) -> str:
        if not self._ready.is_set():
            raise AmiError(f"AMI not connected to {self.host}:{self.port}")
        action_id = action_id or self.next_action_id()
        fields: dict[str, HeaderValue] = {"Action": action}
        fields.update(headers or {})
        fields["ActionID"] = action_id
        payload = encode(fields)
        with self._lock:
            self._waiters[action_id] = waiter
            sock = self._sock
        try:
            if sock is None:
                raise OSError("no socket")
            with self._send_lock:
                sock.sendall(payload)
        except OSError as exc:
            with self._lock:
                self._waiters.pop(action_id, None)
            raise AmiError(f"AMI send failed: {exc}") from exc
        return action_id

    def _await(self, action_id: str, waiter: _Waiter, timeout: float | None) -> _Waiter:
        if not waiter.done.wait(self.action_timeout_s if timeout is None else timeout):
            with self._lock:
                self._waiters.pop(action_id, None)
            raise AmiTimeout(f"no AMI response to {action_id} in time")
        if waiter.error is not None:
            raise waiter.error
        return waiter

    def _forget_event_waiter(self, action_id: str, waiter: _Waiter) -> None:
        with self._lock:
            if self._event_waiters.get(action_id) is waiter:
                del self._event_waiters[action_id]

    # --- connection ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self.stats.attempts += 1
            try:
                sock = self._connect()
            except AmiAuthError as exc:
                self.last_error = str(exc)
                log.error("AMI login to %s:%s as %r refused: %s", self.host, self.port, self.username, exc)
            except (OSError, ProtocolError, AmiError) as exc:
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                log.warning("AMI connection to %s:%s failed: %s", self.host, self.port, self.last_error)
            else:
                self.backoff.reset()
                self._serve(sock)
            if self._stop.is_set():
                break
            delay = self.backoff.next()
            self.stats.retry_delays.append(delay)
            log.info("AMI: next connection attempt in %.2f s", delay)
            self._stop.wait(delay)

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        with self._lock:
            self._sock = sock
        if self._stop.is_set():
            self._drop_socket()
            raise AmiError("closing")
        parser = Parser()
        try:
            pending: list[Message] = []
            while parser.banner is None:
                pending.extend(self._read(sock, parser))
            self.banner = parser.banner
            login_id = self.next_action_id()
            sock.sendall(
                encode(
                    {
                        "Action": "Login",
                        "Username": self.username,
                        "Secret": self._secret,
                        "Events": self.events_mask,
                        "ActionID": login_id,
                    }
                )
            )
            response = None
            while response is None:
                for message in pending or self._read(sock, parser):
                    if message.is_response and message.action_id == login_id:
                        response = message
                    elif message.is_event:
                        self._on_event(message)
                pending = []
            if response.get("Response") != "Success":
                raise AmiAuthError(response.get("Message") or "login refused")
        except BaseException:
            self._drop_socket()
            raise
        self._parser = parser
        return sock

    def _read(self, sock: socket.socket, parser: Parser) -> list[Message]:
        chunk = sock.recv(READ_SIZE)
        if not chunk:
            raise ConnectionError("connection closed by Asterisk")
        self.stats.reads += 1
        self.stats.bytes += len(chunk)
        return parser.feed(chunk)

    def _serve(self, sock: socket.socket) -> None:
        self.stats.connects += 1
        log.info("AMI connected to %s:%s (%s) as %r", self.host, self.port, self.banner, self.username)
        if self.stats.connects > 1:
            self._pending_gap = self.last_event_at
        sock.settimeout(self.keepalive_s)
        self._ready.set()
        for handler in self._connect_handlers:
            try:
                handler()
            except Exception:
                log.exception("AMI on-connect handler failed")
        ping: tuple[str, float] | None = None
        idle = 0.0
        try:
            while not self._stop.is_set():
                try:
                    messages = self._read(sock, self._parser)
                except TimeoutError:
                    idle += self.keepalive_s
                    if ping is not None and ping[0] in self._waiters and idle > self.action_timeout_s:
                        raise ConnectionError("no answer to keep-alive Ping") from None
                    ping_waiter = _Waiter()
                    ping = (self._send("Ping", None, ping_waiter, None), idle)
                    continue
                idle = 0.0
                for message in messages:
                    self._route(message)
        except (OSError, ProtocolError, AmiError) as exc:
            if not self._stop.is_set():
                self.stats.drops += 1
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                log.warning("AMI connection to %s:%s lost: %s", self.host, self.port, self.last_error)
        finally:
            self._ready.clear()
            self._drop_socket()
            self._fail_waiters(AmiError("AMI connection lost"))

    def _drop_socket(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _fail_waiters(self, error: AmiError) -> None:
        with self._lock:
            waiters = list(self._waiters.values()) + list(self._event_waiters.values())
            self._waiters.clear()
            self._event_waiters.clear()
        for waiter in waiters:
            waiter.finish(error if waiter.event is None else None)

    # --- routing and dispatch --------------------------------------------------------------------

    def _route(self, message: Message) -> None:
        action_id = message.action_id
        if message.is_event:
            if action_id:
                with self._lock:
                    waiter = self._waiters.get(action_id)
                    event_waiter = self._event_waiters.get(action_id)
                if waiter is not None and waiter.collect:
                    if message.get("EventList") == "Complete":
                        with self._lock:
                            self._waiters.pop(action_id, None)
                        waiter.finish()
                    else:
                        waiter.events.append(message)
                    return
                if event_waiter is not None and message.event == event_waiter.event:
                    event_waiter.response = message
                    event_waiter.finish()
            self._on_event(message)
            return
        self.stats.responses += 1
        with self._lock:
            waiter = self._waiters.get(action_id)
            if waiter is None:
                log.debug("AMI response for unknown ActionID %r dropped", action_id)
                return
            list_follows = waiter.collect and message.get("Response") == "Success"
            if not list_follows:
                self._waiters.pop(action_id, None)
        waiter.response = message
        if not list_follows:
            waiter.finish()

    def _on_event(self, message: Message) -> None:
        self.stats.events += 1
        now = self.clock()
        if self._pending_gap is not False:
            last = self._pending_gap if isinstance(self._pending_gap, datetime) else None
            seconds = (now - last).total_seconds() if last else None
            gap = Gap(last, now, seconds, self.stats.connects - 1)
            self.gaps.append(gap)
            self._pending_gap = False
            log.warning(
                "AMI event gap after reconnect: last event before the drop at %s, first after at %s "
                "(%s); events in between were missed",
                last.isoformat() if last else "(none)",
                now.isoformat(),
                f"{seconds:.3f} s" if seconds is not None else "unknown length",
            )
        self.last_event_at = now
        self._events.put(message)

    def _dispatch_loop(self) -> None:
        while True:
            message = self._events.get()
            if message is None:
                if self._stop.is_set():
                    return
                continue
            if isinstance(message, threading.Event):
                message.set()
                continue
            for handler in list(self._handlers):
                try:
                    handler(message)
                except Exception:
                    self.stats.handler_errors += 1
                    log.exception("AMI event handler failed on %s; dispatch continues", message.event)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every event received so far has been handled (tests, shutdown)."""
        done = threading.Event()
        self._events.put(done)
        return done.wait(timeout)
