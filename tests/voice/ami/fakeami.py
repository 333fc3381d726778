"""A fake Asterisk Manager Interface on 127.0.0.1, speaking the wire format of a real Asterisk 22.

Built from tests/captures/ami-one-queue-call.jsonl: the banner line, ``Key: Value`` CRLF lines,
a blank line after each message, ActionID echoed on every response. It answers Login (good or bad
secret), Logoff, Ping, Getvar, Command (Asterisk 22 ``Output:`` lines or the old ``Follows`` body),
QueueStatus (a list action, with an unrelated event slipped in the middle) and Originate (``Success``
"Originate successfully queued", then an OriginateResponse event with the same ActionID), ListCommands
and QueuePause, and lets a test push events, raw bytes, or drop the connection. Deliberately independent
of callcenter's parser.

Users have ``write`` classes as in manager.conf and each action the authority Asterisk 22 registers it
with (main/manager.c, apps/app_queue.c): an action runs when the user has one of its classes or it needs
none, else ``Response: Error`` / ``Message: Permission denied``; ``ListCommands`` lists only the actions
the user may run, one ``Name: synopsis (Priv: classes)`` line each (``action_listcommands``). QueuePause
answers as in tests/captures/scenarios/queue-pause-permission/: ``Interface paused successfully``
(or ``unpaused``) plus one ``QueueMemberPause`` event per queue of the member, sent to the sessions that
have events on and the ``agent`` read class, or ``Error`` ``Interface not found``.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "ami-one-queue-call.jsonl"
BANNER = "Asterisk Call Manager/10.0.0"

# name: (synopsis, authority) of the actions the fake answers, as Asterisk 22 registers them.
ACTIONS: dict[str, tuple[str, frozenset[str]]] = {
    "Ping": ("Keepalive command.", frozenset()),
    "Logoff": ("Logoff Manager.", frozenset()),
    "ListCommands": ("List available manager commands.", frozenset()),
    "Getvar": ("Gets a channel variable or function value.", frozenset({"call", "reporting"})),
    "Command": ("Execute Asterisk CLI Command.", frozenset({"command"})),
    "QueueStatus": ("Show queue status.", frozenset()),
    "Originate": ("Originate a call.", frozenset({"originate"})),
    "QueuePause": ("Makes a queue member temporarily unavailable.", frozenset({"agent"})),
    "Redirect": ("Redirect (transfer) a call.", frozenset({"call"})),
}
# The order Asterisk prints classes in (authority_to_str).
CLASS_ORDER = [
    "system",
    "call",
    "log",
    "verbose",
    "command",
    "agent",
    "user",
    "config",
    "dtmf",
    "reporting",
    "cdr",
    "dialplan",
    "originate",
    "agi",
    "cc",
    "aoc",
    "test",
    "security",
    "message",
]


def classes(text: str) -> frozenset[str]:
    """A manager.conf ``read``/``write`` value: ``all`` is every class."""
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    return frozenset(CLASS_ORDER) if "all" in names else names


def priv(authority: frozenset[str]) -> str:
    return ",".join([name for name in CLASS_ORDER if name in authority] + ["all"]) if authority else "<none>"


def load_capture(path: Path = CAPTURE) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def wire(message: Mapping[str, Any] | Iterable[tuple[str, str]]) -> bytes:
    """An AMI message as Asterisk writes it; a header Asterisk repeats (``ChanVariable``), given as a
    list as in the captures' JSON, becomes one line per value."""
    pairs = message.items() if isinstance(message, Mapping) else message
    lines = [
        f"{key}: {item}\r\n"
        for key, value in pairs
        for item in (value if isinstance(value, list) else [value])
    ]
    return ("".join(lines) + "\r\n").encode("utf-8")


def parse_action(block: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in block.decode("utf-8").split("\r\n"):
        key, _, value = line.partition(": ")
        if key in fields:
            fields[key] += "\n" + value  # repeated headers (Variable) joined with newlines
        else:
            fields[key] = value
    return fields


class Session:
    def __init__(self, server: FakeAmi, sock: socket.socket) -> None:
        self.server, self.sock = server, sock
        self.lock = threading.Lock()
        self.logged_in = False
        self.closed = False
        self.write: frozenset[str] = frozenset()
        self.read: frozenset[str] = frozenset()
        self.events_on = True

    def send(self, data: bytes) -> None:
        with self.lock:
            if not self.closed:
                try:
                    self.sock.sendall(data)
                except OSError:
                    self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def run(self) -> None:
        server = self.server
        if server.greet:
            self.send((server.banner + "\r\n").encode())
        buffer = b""
        try:
            while not self.closed:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    block, buffer = buffer.split(b"\r\n\r\n", 1)
                    action = parse_action(block)
                    server.actions.append(action)
                    if server.silent:
                        continue
                    if server.reorder and action.get("Action") != "Login":
                        threading.Thread(target=self.answer, args=(action, True), daemon=True).start()
                    else:
                        self.answer(action, False)
        except OSError:
            pass
        finally:
            self.close()

    def answer(self, action: dict[str, str], jitter: bool) -> None:
        if jitter:
            time.sleep(random.random() * 0.003)
        server = self.server
        name = action.get("Action", "")
        action_id = action.get("ActionID", "")
        base = [("Response", "Success"), ("ActionID", action_id)]
        if name == "Login":
            user = server.users.get(action.get("Username", ""))
            if user is not None and action.get("Secret") == user.secret:
                self.logged_in = True
                self.write, self.read = user.write, user.read
                self.events_on = action.get("Events", "on") != "off"
                self.send(wire([*base, ("Message", "Authentication accepted")]))
                self.send(wire({"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"}))
                server.logins += 1
                server.logged_in.set()
            else:
                server.failed_logins += 1
                self.send(
                    wire(
                        [("Response", "Error"), ("ActionID", action_id), ("Message", "Authentication failed")]
                    )
                )
                self.close()
            return
        if not self.logged_in:
            self.send(
                wire([("Response", "Error"), ("ActionID", action_id), ("Message", "Permission denied")])
            )
            return
        authority = ACTIONS[name][1] if name in ACTIONS else frozenset()
        if authority and not authority & self.write:
            self.send(
                wire([("Response", "Error"), ("ActionID", action_id), ("Message", "Permission denied")])
            )
            return
        if name == "Logoff":
            server.logoffs += 1
            self.send(
                wire(
                    [
                        ("Response", "Goodbye"),
                        ("ActionID", action_id),
                        ("Message", "Thanks for all the fish."),
                    ]
                )
            )
            self.close()
        elif name == "Ping":
            if server.answer_pings:
                self.send(wire([*base, ("Ping", "Pong"), ("Timestamp", "1795424087.000000")]))
        elif name == "Getvar":
            variable = action.get("Variable", "")
            self.send(wire([*base, ("Variable", variable), ("Value", f"value-of-{variable}")]))
        elif name == "Command":
            lines = server.command_output
            if server.old_command_format:
                body = "Response: Follows\r\nPrivilege: Command\r\nActionID: " + action_id + "\r\n"
                body += "\n".join(lines) + "\n--END COMMAND--\r\n\r\n"
                self.send(body.encode())
            else:
                self.send(
                    wire(
                        [*base, ("Message", "Command output follows"), *[("Output", line) for line in lines]]
                    )
                )
        elif name == "QueueStatus":
            self.send(wire([*base, ("EventList", "start"), ("Message", "Queue status will follow")]))
            self.send(
                wire({"Event": "QueueParams", "Queue": "consultation", "Calls": "0", "ActionID": action_id})
            )
            self.send(wire(server.interleaved_event))
            self.send(
                wire(
                    {
                        "Event": "QueueMember",
                        "Queue": "consultation",
                        "Name": "Agent Consult",
                        "ActionID": action_id,
                    }
                )
            )
            self.send(
                wire(
                    {
                        "Event": "QueueStatusComplete",
                        "ActionID": action_id,
                        "EventList": "Complete",
                        "ListItems": "2",
                    }
                )
            )
        elif name == "Originate":
            self.originate(action)
        elif name == "QueuePause":
            self.queue_pause(action)
        elif name == "ListCommands":
            lines = "".join(
                f"{action_name}: {synopsis} (Priv: {priv(needs)})\r\n"
                for action_name, (synopsis, needs) in ACTIONS.items()
                if not needs or needs & self.write
            )
            # astman_start_ack: Response and ActionID, no blank line; then the list, then the blank line.
            self.send(f"Response: Success\r\nActionID: {action_id}\r\n{lines}\r\n".encode())
        elif name == "Redirect":
            # Asterisk's answers: the channel must exist (a caller who hung up is gone).
            if action.get("Channel") in server.live_channels:
                self.send(wire([*base, ("Message", "Redirect successful")]))
            else:
                channel = action.get("Channel", "")
                self.send(
                    wire(
                        [
                            ("Response", "Error"),
                            ("ActionID", action_id),
                            ("Message", f"Channel does not exist: {channel}"),
                        ]
                    )
                )
        else:
            self.send(
                wire([("Response", "Error"), ("ActionID", action_id), ("Message", "Invalid/unknown command")])
            )

    def queue_pause(self, action: dict[str, str]) -> None:
        server = self.server
        action_id = action.get("ActionID", "")
        interface = action.get("Interface", "")
        queues = server.queue_members.get(interface, [])
        if action.get("Queue"):
            queues = [queue for queue in queues if queue == action["Queue"]]
        if not queues:
            self.send(
                wire([("Response", "Error"), ("ActionID", action_id), ("Message", "Interface not found")])
            )
            return
        paused = action.get("Paused", "").lower() in ("true", "yes", "1", "on")
        reason = action.get("Reason", "") if paused else ""
        for queue in queues:
            event = {
                "Event": "QueueMemberPause",
                "Privilege": "agent,all",
                "Timestamp": f"{time.time():.6f}",
                "Queue": queue,
                "MemberName": server.member_names.get(interface, interface),
                "Interface": interface,
                "StateInterface": interface,
                "Membership": "static",
                "Penalty": "0",
                "CallsTaken": "0",
                "LastCall": "0",
                "LastPause": str(int(time.time())),
                "LoginTime": "1796224984",
                "InCall": "0",
                "Status": "1",
                "Paused": "1" if paused else "0",
                "PausedReason": reason,
                "Ringinuse": "0",
                "Wrapuptime": "0",
            }
            server.send_events([event], need="agent")
        state = "paused" if paused else "unpaused"
        self.send(
            wire(
                [
                    ("Response", "Success"),
                    ("ActionID", action_id),
                    ("Message", f"Interface {state} successfully"),
                ]
            )
        )

    def originate(self, action: dict[str, str]) -> None:
        server = self.server
        action_id = action.get("ActionID", "")
        if server.originate == "error":
            self.send(
                wire(
                    [("Response", "Error"), ("ActionID", action_id), ("Message", "Extension does not exist.")]
                )
            )
            return
        self.send(
            wire(
                [
                    ("Response", "Success"),
                    ("ActionID", action_id),
                    ("Message", "Originate successfully queued"),
                ]
            )
        )
        if server.originate == "none":
            return
        success = server.originate == "success"
        event = {
            "Event": "OriginateResponse",
            "Privilege": "call,all",
            "Timestamp": "1795424087.746354",
            "ActionID": action_id,
            "Response": "Success" if success else "Failure",
            "Channel": action.get("Channel", ""),
            "Context": action.get("Context", ""),
            "Exten": action.get("Exten", ""),
            "Reason": "4" if success else str(server.failure_reason),
            "Uniqueid": "1795424200.9" if success else "<null>",
            "CallerIDNum": "<unknown>",
            "CallerIDName": "<unknown>",
        }

        def later() -> None:
            time.sleep(server.originate_delay_s)
            # An unrelated event first, so the OriginateResponse is not simply the next message.
            self.send(wire(server.interleaved_event))
            self.send(wire(event))

        threading.Thread(target=later, daemon=True).start()


@dataclass(frozen=True)
class User:
    secret: str
    write: frozenset[str]
    read: frozenset[str]


class FakeAmi:
    def __init__(
        self,
        *,
        username: str = "callcenter",
        secret: str = "s3cret",
        write: str = "all",
        read: str = "all",
        banner: str = BANNER,
        greet: bool = True,
        silent: bool = False,
        reorder: bool = False,
        answer_pings: bool = True,
        originate: str = "success",
        failure_reason: int = 5,
        originate_delay_s: float = 0.05,
    ) -> None:
        self.username, self.secret, self.banner = username, secret, banner
        self.users: dict[str, User] = {}
        self.add_user(username, secret, write=write, read=read)
        # QueuePause: interface -> its queues; the capture's agent 1001 and the console's PJSIP/1001.
        self.queue_members: dict[str, list[str]] = {
            "Local/1001@agents-sim/n": ["consultation"],
            "PJSIP/1001": ["consultation"],
        }
        self.member_names: dict[str, str] = {"Local/1001@agents-sim/n": "张伟", "PJSIP/1001": "张伟"}
        self.greet, self.silent, self.reorder, self.answer_pings = greet, silent, reorder, answer_pings
        self.originate, self.failure_reason, self.originate_delay_s = (
            originate,
            failure_reason,
            originate_delay_s,
        )
        self.command_output = [
            "Name/username             Host",
            "1001/1001                 (Unspecified)",
            "2 sip peers",
        ]
        self.old_command_format = False
        self.interleaved_event = {"Event": "Newexten", "Privilege": "dialplan,all", "Channel": "PJSIP/9-1"}
        self.actions: list[dict[str, str]] = []
        self.live_channels: set[str] = set()  # channels a Redirect may name
        self.sessions: list[Session] = []
        self.connections = self.logins = self.failed_logins = self.logoffs = 0
        self.logged_in = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def add_user(self, username: str, secret: str, *, write: str = "all", read: str = "all") -> None:
        """A manager.conf user: ``write``/``read`` as there (``originate,call``, ``all``…)."""
        self.users[username] = User(secret, classes(write), classes(read))

    def start(self) -> FakeAmi:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stopped:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            session = Session(self, sock)
            self.sessions.append(session)
            threading.Thread(target=session.run, daemon=True).start()

    @property
    def live(self) -> list[Session]:
        return [session for session in self.sessions if not session.closed and session.logged_in]

    def wait_logins(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.logins < count or not self.live:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} logins, saw {self.logins}")
            time.sleep(0.005)

    def send_raw(self, data: bytes) -> None:
        sessions = self.live
        assert sessions, "no logged-in client"
        for session in sessions:
            session.send(data)

    def send_events(self, events: Iterable[Mapping[str, Any]], *, need: str | None = None) -> None:
        """To every logged-in session; with ``need``, only those with events on and that read class."""
        data = b"".join(wire(event) for event in events)
        if need is None:
            self.send_raw(data)
            return
        for session in self.live:
            if session.events_on and need in session.read:
                session.send(data)

    def drop(self) -> None:
        for session in list(self.sessions):
            session.close()

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()
        self.drop()
