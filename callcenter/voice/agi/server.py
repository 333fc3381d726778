"""The FastAGI server: a threaded TCP server (like wazo-agid) routing by ``agi_network_script``.

Scripts are registered by name in one explicit table. Each request has one error boundary: if the
script fails for any reason other than the caller hanging up, the caller is sent to the default
queue (``CC_QUEUE``) and the failure is logged with the call id and recorded on the call.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import queue
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from callcenter.exceptions import ConfigurationError, ProtocolError
from callcenter.services.calls import CallSeen, Entry
from callcenter.services.journal import Recorder
from callcenter.voice.agi.protocol import AgiHangup, BadEnvironment, DeadlineReader, Limits, SocketAGI

log = logging.getLogger(__name__)

CHANNEL = "asterisk"


@dataclass
class AgiRequest:
    """One FastAGI session: the protocol object and what the script learnt about the call."""

    agi: SocketAGI
    script: str
    call_key: str  # the contact record's external id (Asterisk linkedid once known)
    uniqueid: str  # this channel's uniqueid (natural keys of this session's events)
    notes: dict[str, Any] = field(default_factory=dict)
    pending: list[Entry] = field(default_factory=list)  # timeline entries not yet recorded
    direction: str = "inbound"

    @property
    def env(self) -> Mapping[str, str]:
        return self.agi.env

    @property
    def session_key(self) -> str:
        """The prefix of this session's natural keys: ``agi:<uniqueid>:<priority>@<context>``.

        Several AGI sessions run on one channel (the hotline, then after-hours or queue-callback on
        the same uniqueid); the dialplan line that started each tells them apart, and is the same
        whenever the same session is reported again."""
        return session_key(self.uniqueid, self.agi.env)

    def seen(self, at: datetime) -> CallSeen:
        env = self.agi.env
        return CallSeen(
            channel=CHANNEL,
            external_id=self.call_key,
            at=at,
            direction=self.direction,
            from_raw=_known(env.get("agi_callerid", "")),
            to_raw=str(self.notes.get("to") or _dialled(env)),
            caller_name=_known(env.get("agi_calleridname", "")),
        )


# Values Asterisk sends for what it does not know, and extensions that are not a dialled number.
_UNKNOWN = frozenset({"", "unknown", "<unknown>"})
_SPECIAL_EXTENSIONS = frozenset({"s", "i", "t", "h", "o", "a", "e", "T"})
_MAX_LOCATION = 80


def _known(value: str) -> str:
    return "" if value in _UNKNOWN else value


def _dialled(env: Mapping[str, str]) -> str:
    """The number the caller dialled: the DNID, or else the extension the call arrived at."""
    dnid = _known(env.get("agi_dnid", ""))
    extension = env.get("agi_extension", "")
    return dnid or ("" if extension in _SPECIAL_EXTENSIONS else _known(extension))


def session_key(uniqueid: str, env: Mapping[str, str]) -> str:
    location = f"{env.get('agi_priority', '')}@{env.get('agi_context', '')}"
    if len(location) > _MAX_LOCATION:  # keys are stored in 128 characters: keep them unique
        location = hashlib.sha1(location.encode(), usedforsecurity=False).hexdigest()
    return f"agi:{uniqueid}:{location}"


Script = Callable[[AgiRequest], None]


class Router:
    """The table of AGI scripts. Registering a name twice is an error."""

    def __init__(self) -> None:
        self._scripts: dict[str, Script] = {}

    def register(self, name: str, script: Script) -> None:
        if name in self._scripts:
            raise ValueError(f"AGI script {name!r} is registered twice")
        self._scripts[name] = script

    def get(self, name: str) -> Script | None:
        return self._scripts.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._scripts)


@dataclass(frozen=True)
class Fallback:
    """Where a failed request sends the caller, and how it is recorded."""

    default_queue: str
    recorder: Recorder
    clock: Callable[[], datetime]


def script_name(env: Mapping[str, str]) -> str:
    """``agi_network_script`` (e.g. ``hotline``), or the path of ``agi_request`` without arguments."""
    name = env.get("agi_network_script", "")
    if not name:
        request = env.get("agi_request", "")
        name = request.split("://", 1)[-1].partition("/")[2]
    return name.split("?", 1)[0].strip("/")


@dataclass(frozen=True)
class _EnvOnly:
    """What is left of a session whose environment block never completed."""

    env: dict[str, str]


class FastAGIHandler(socketserver.StreamRequestHandler):
    server: FastAGIServer

    def setup(self) -> None:
        self.request.settimeout(self.server.env_timeout_s)
        super().setup()
        # Reads go through a DeadlineReader: the whole agi_* block has one deadline (env_timeout_s),
        # not one per recv, so a sender trickling bytes cannot hold this thread.
        self.rfile.close()  # the socket file made by StreamRequestHandler (it holds a socket reference)
        self.reader = DeadlineReader(self.request)
        self.rfile = io.BufferedReader(self.reader)

    def handle(self) -> None:
        peer = f"{self.client_address[0]}:{self.client_address[1]}" if self.client_address else "?"
        self.reader.deadline = time.monotonic() + self.server.env_timeout_s
        try:
            agi = SocketAGI(self.rfile, self.wfile, self.server.limits)
        except BadEnvironment as exc:
            log.warning("AGI connection from %s dropped before the environment was read: %s", peer, exc)
            self.server.record_bad_environment(exc)
            return
        except (ProtocolError, OSError) as exc:
            log.warning("AGI connection from %s dropped before the environment was read: %s", peer, exc)
            return
        self.reader.deadline = None
        self.request.settimeout(self.server.reply_timeout_s)
        if agi.ignored_env_lines:
            log.warning("AGI from %s: ignored %d malformed environment lines", peer, agi.ignored_env_lines)
        uniqueid = agi.env.get("agi_uniqueid") or f"missing-{uuid.uuid4().hex}"
        request = AgiRequest(agi=agi, script=script_name(agi.env), call_key=uniqueid, uniqueid=uniqueid)
        self.server.run_request(request)


class FastAGIServer(socketserver.ThreadingTCPServer):
    # Stopping (server_close) waits for sessions in flight to finish (and to record what they saw);
    # each is bounded by reply_timeout_s.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 512
    # Sessions run on worker threads that are reused: a new thread per call costs the accept loop a
    # thread start and a wait for it to run, which under load is a GIL hand-off per call. Workers
    # idle beyond this many end.
    max_idle_workers = 64
    # Connections over ``max_sessions`` are closed unserved; the WARNING saying so is written at most
    # once per this many seconds, with the number closed since the previous one.
    refusal_log_interval_s = 10.0

    def __init__(
        self,
        address: tuple[str, int],
        router: Router,
        fallback: Fallback,
        *,
        limits: Limits | None = None,
        env_timeout_s: float = 5.0,
        reply_timeout_s: float = 120.0,
        max_sessions: int = 500,
    ) -> None:
        self.router = router
        self.fallback = fallback
        self.limits = limits or Limits()
        self.env_timeout_s = env_timeout_s
        self.reply_timeout_s = reply_timeout_s
        self.max_sessions = max_sessions
        self.in_flight = 0  # sessions accepted and not yet finished (queued for a worker or running)
        self.refused = 0  # connections closed unserved because of max_sessions
        self._refused_unlogged = 0
        self._refusal_logged_at: float | None = None
        self._sessions: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self._workers_lock = threading.Lock()
        self._workers: set[threading.Thread] = set()
        self._idle_workers = 0
        super().__init__(address, FastAGIHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def server_bind(self) -> None:
        """Bind, or stop start-up with one clear line (``callcenter agi``/``serve`` print it, exit 1)."""
        host, port = str(self.server_address[0]), int(self.server_address[1])
        try:
            super().server_bind()
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            hint = " (is another `callcenter agi` or `callcenter serve` running?)"
            raise ConfigurationError(
                f"FastAGI: cannot listen on {host}:{port}: {reason}"
                + (hint if exc.errno == errno.EADDRINUSE else "")
            ) from exc

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to an idle worker, or start one; over ``max_sessions``, close it."""
        with self._workers_lock:
            if self.in_flight >= self.max_sessions:
                self._refuse(request, client_address)
                return
            self.in_flight += 1
            if self._idle_workers:
                self._idle_workers -= 1  # that worker's next get() takes this session
                self._sessions.put((request, client_address))
                return
            worker = threading.Thread(
                target=self._work, args=((request, client_address),), name="fastagi-session", daemon=True
            )
            self._workers.add(worker)
        worker.start()

    def _refuse(self, request: Any, client_address: Any) -> None:
        """Close a connection over the cap at once, sending nothing (called with the workers lock held):
        Asterisk's AGI() returns and the dialplan's fail-safe sends the caller to the default queue."""
        self.shutdown_request(request)
        self.refused += 1
        self._refused_unlogged += 1
        now = time.monotonic()
        if (
            self._refusal_logged_at is not None
            and now - self._refusal_logged_at < self.refusal_log_interval_s
        ):
            return
        self._refusal_logged_at = now
        count, self._refused_unlogged = self._refused_unlogged, 0
        peer = f"{client_address[0]}:{client_address[1]}" if client_address else "?"
        log.warning(
            "FastAGI: %d sessions in flight, at the cap (agi.max_sessions = %d): connection from %s closed "
            "unserved; %d closed so far since the last such line (one line per %.0f s at most)",
            self.in_flight,
            self.max_sessions,
            peer,
            count,
            self.refusal_log_interval_s,
        )

    def _work(self, first: tuple[Any, Any]) -> None:
        session: tuple[Any, Any] | None = first
        while session is not None:
            request, client_address = session
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
            with self._workers_lock:
                self.in_flight -= 1
                if self._idle_workers >= self.max_idle_workers:
                    self._workers.discard(threading.current_thread())
                    return
                self._idle_workers += 1
            session = self._sessions.get()
        with self._workers_lock:
            self._workers.discard(threading.current_thread())

    def server_close(self) -> None:
        """Close the socket, wait for the sessions in flight, then for the recorder to write their reports."""
        super().server_close()
        with self._workers_lock:
            workers = list(self._workers)
        for _ in workers:
            self._sessions.put(None)  # after any session still queued; each worker takes one and ends
        for worker in workers:
            worker.join()
        self.fallback.recorder.close()

    def run_request(self, request: AgiRequest) -> None:
        """The error boundary of one AGI request."""
        script = self.router.get(request.script)
        try:
            if script is None:
                raise LookupError(
                    f"no AGI script named {request.script!r} (known: {', '.join(self.router.names)})"
                )
            script(request)
        except AgiHangup as exc:
            log.info("AGI %s call %s: %s", request.script, request.call_key, exc)
        except TimeoutError:
            log.warning(
                "AGI %s call %s: Asterisk stopped answering; session closed", request.script, request.call_key
            )
        except Exception as exc:
            log.exception(
                "AGI %s call %s failed; sending the caller to the default queue",
                request.script,
                request.call_key,
            )
            self._fall_back(request, exc)

    def record_bad_environment(self, exc: BadEnvironment) -> None:
        """A cut-off session that still named its call is put on record with the reason."""
        uniqueid = exc.env.get("agi_uniqueid")
        if not uniqueid:
            return
        # Only the environment is read from here on (AgiRequest.seen), so it stands in for the session.
        stand_in = cast(SocketAGI, _EnvOnly(exc.env))
        request = AgiRequest(agi=stand_in, script=script_name(exc.env), call_key=uniqueid, uniqueid=uniqueid)
        self._record_pending(request, f"bad AGI session: {exc}")

    def _record_pending(self, request: AgiRequest, reason: str) -> None:
        now = self.fallback.clock()
        lost = Entry(
            f"{request.session_key}:lost",
            "ivr.error",
            now,
            "agi",
            request.notes.get("node"),
            10_000,
            {"error": reason},
        )
        try:
            self.fallback.recorder.record(request.seen(now), [*request.pending, lost])
        except Exception:
            log.exception("call %s: could not record the end of the session", request.call_key)

    def _fall_back(self, request: AgiRequest, exc: Exception) -> None:
        queue = self.fallback.default_queue
        now = self.fallback.clock()
        entry = Entry(
            key=f"{request.session_key}:fallback",
            kind="ivr.fallback",
            at=now,
            source="agi",
            node=request.notes.get("node"),
            seq=10_000,
            data={
                "queue": queue,
                "branch": "error",
                "priority": 0,
                "error": f"{type(exc).__name__}: {exc}"[:255],
            },
        )
        try:
            request.agi.set_variable("CC_QUEUE", queue)
            request.agi.set_variable("CC_NEXT", "queue")
            request.agi.set_variable("CC_BRANCH", "error")
            request.agi.set_variable("CC_PRIORITY", 0)
        except Exception as send_error:  # the channel may be gone too; the record still matters
            log.warning("call %s: could not set CC_QUEUE after the failure: %s", request.call_key, send_error)
        try:
            self.fallback.recorder.record(request.seen(now), [*request.pending, entry])
        except Exception:
            log.exception("call %s: could not record the fallback", request.call_key)


class RunningServer:
    """A FastAGI server serving in a background thread (for ``serve`` and the tests)."""

    def __init__(self, server: FastAGIServer) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, name="fastagi", daemon=True)

    def __enter__(self) -> RunningServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
