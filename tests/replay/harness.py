"""Replay of a captured Asterisk scenario into the real AMI listener and the real FastAGI server.

A scenario folder (tests/captures/scenarios/<name>/, see its README.md) holds ``ami.jsonl`` (every
AMI message, repeated headers as JSON lists) and ``agi-N.txt`` (each FastAGI session, line by line,
with its ms offset from the accept). ``timeline`` merges them into one list of deliveries ordered by
capture time: AMI events by their ``Timestamp``, AGI lines by the session's accept epoch + offset.
``Player`` walks that list on one thread:

* AMI events go through the fake AMI server (tests/voice/ami/fakeami.py) on the wire, repeated
  headers as repeated lines, to the AMI client and listener built by ``build_ami``; consecutive
  events are sent together and the player waits until the listener has handled them;
* each AGI session is a TCP connection to the FastAGI server from ``build_server``: the ``agi_*``
  block is sent as captured, every command the app sends must equal the captured ``<S`` line, and
  every captured ``A>`` line (replies, the unsolicited ``HANGUP`` lines) is sent where it was
  captured. A ``GET VARIABLE`` the capture does not have is answered from the channel's variables
  (what an earlier ``SET VARIABLE`` put there) or as unset, and noted in ``Player.extra``.

The clock the app reads is ``ReplayClock``: the player sets it to the capture time of each AGI line
before delivering it (the AMI listener reads each event's ``Timestamp``), so no real time passes and
the order in which racing AMI events arrive does not move the clock an AGI session reads.

Responses (lines with ``Response`` and no ``Event``) came on other AMI connections: they are not
played as events.
"""

from __future__ import annotations

import heapq
import json
import re
import socket
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

SCENARIOS = Path(__file__).resolve().parent.parent / "captures" / "scenarios"
_LINE = re.compile(r"^\s*(\d+) (A>|<S|#)(?: (.*))?$")
_ACCEPT = re.compile(r"session \d+ accepted at epoch (\d+\.\d+)")
_SET = re.compile(r'^SET VARIABLE "([^"]*)" "(.*)"$')
_GET = re.compile(r'^GET VARIABLE "([^"]*)"$')

AmiMessage = dict[str, Any]  # values: str, or a list of str for a repeated header


def epoch(stamp: str | Decimal) -> datetime:
    """An Asterisk epoch Timestamp (``1796225004.689042``) as an aware UTC datetime, exactly."""
    value = Decimal(stamp)
    seconds = int(value)
    micros = int(((value - seconds) * 1_000_000).to_integral_value())
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros)


# --- the capture ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgiLine:
    ms: int
    direction: str  # "A>" Asterisk → app, "<S" app → Asterisk, "#" a note of the proxy
    text: str


@dataclass
class AgiSession:
    name: str  # the file stem, e.g. agi-2
    accept: Decimal  # epoch seconds
    env: list[str]  # the agi_* lines, without the empty line that ends the block
    env_ms: int  # offset of the empty line
    lines: list[AgiLine]  # after the agi_* block

    @property
    def variables(self) -> dict[str, str]:
        return dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "") for line in self.env)

    @property
    def channel(self) -> str:
        return self.variables["agi_channel"]

    def at(self, ms: int) -> Decimal:
        return self.accept + Decimal(ms) / 1000

    @property
    def end_ms(self) -> int:
        return max(line.ms for line in self.lines)


@dataclass
class Scenario:
    name: str
    messages: list[AmiMessage]
    sessions: list[AgiSession]

    @property
    def events(self) -> list[AmiMessage]:
        return [message for message in self.messages if "Event" in message]

    @property
    def responses(self) -> list[AmiMessage]:
        return [message for message in self.messages if "Response" in message and "Event" not in message]


def load_agi(path: Path) -> AgiSession:
    accept: Decimal | None = None
    env: list[str] = []
    env_ms = 0
    lines: list[AgiLine] = []
    in_env = True
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("#"):
            found = _ACCEPT.search(raw)
            if found:
                accept = Decimal(found.group(1))
            continue
        match = _LINE.match(raw)
        if match is None:
            raise ValueError(f"{path}: cannot read line {raw!r}")
        ms, direction, text = int(match.group(1)), match.group(2), match.group(3) or ""
        if in_env and direction == "A>":
            if text.strip():
                env.append(text)
            else:
                in_env, env_ms = False, ms
            continue
        lines.append(AgiLine(ms, direction, text))
    if accept is None:
        raise ValueError(f"{path}: no 'session N accepted at epoch X' note")
    return AgiSession(path.stem, accept, env, env_ms, lines)


def load(name: str, folder: Path = SCENARIOS) -> Scenario:
    root = folder / name
    messages = [
        json.loads(line) for line in (root / "ami.jsonl").read_text(encoding="utf-8").splitlines() if line
    ]
    sessions = [load_agi(path) for path in sorted(root.glob("agi-*.txt"))]
    return Scenario(name, messages, sessions)


# --- the merged timeline -------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One thing to deliver: an AMI event, or one line (or the opening) of an AGI session."""

    at: Decimal
    event: AmiMessage | None = None
    session: int | None = None  # index into Scenario.sessions
    line: AgiLine | None = None  # None with a session: connect and send the agi_* block
    response: AmiMessage | None = None  # an action response (another connection): Player.on_response

    @property
    def label(self) -> str:
        if self.event is not None:
            return f"AMI {self.event.get('Event')} @{self.event.get('Timestamp')}"
        return f"AGI session {self.session} {self.line or 'connect'}"


def timeline(
    scenario: Scenario, moved: Mapping[int, Decimal] | None = None, *, responses: bool = False
) -> list[Delivery]:
    """Every delivery in capture order. ``moved``: event index (in ``scenario.events``) → delivery time.

    With ``responses``, the action responses are delivered too, 1 µs after the event before them in
    the file (they have no Timestamp; they sit where they were received).
    """
    moved = moved or {}
    ami: list[Delivery] = []
    index, last = 0, Decimal(0)
    for message in scenario.messages:
        if "Event" in message:
            last = Decimal(message["Timestamp"])
            ami.append(Delivery(moved.get(index, last), event=message))
            index += 1
        elif responses and "Response" in message:
            ami.append(Delivery(last + Decimal("0.000001"), response=message))
    ami.sort(key=lambda item: item.at)  # stable: the recorded order among equal times
    streams: list[list[Delivery]] = [ami]
    for index, session in enumerate(scenario.sessions):
        stream = [Delivery(session.at(session.env_ms), session=index)]
        stream += [Delivery(session.at(line.ms), session=index, line=line) for line in session.lines]
        streams.append(stream)
    return list(heapq.merge(*streams, key=lambda item: item.at))


def racing_events(scenario: Scenario) -> list[tuple[list[int], int]]:
    """The racing pairs of the README: (event indexes, session index) whose delivery order varies.

    * ``VarSet MIXMONITOR_FILENAME`` + ``MixMonitorStart`` against the first AGI connection;
    * the queue-exit events of the channel (within 10 ms of the accept) against a later session on it.
    """
    events = scenario.events
    pairs: list[tuple[list[int], int]] = []
    if not scenario.sessions:
        return pairs
    recording = [
        index
        for index, event in enumerate(events)
        if event["Event"] == "MixMonitorStart"
        or (event["Event"] == "VarSet" and event.get("Variable") == "MIXMONITOR_FILENAME")
    ]
    if recording:
        pairs.append((recording, 0))
    for number, session in enumerate(scenario.sessions[1:], start=1):
        window = [
            index
            for index, event in enumerate(events)
            if abs(Decimal(event["Timestamp"]) - session.accept) <= Decimal("0.010")
        ]
        if window:
            pairs.append((window, number))
    return pairs


def swapped(scenario: Scenario) -> dict[int, Decimal]:
    """Delivery times that put each racing set on the other side of its AGI session.

    A set delivered before the session's accept in the capture is delivered after the session's first
    command instead; one delivered after the accept goes just before it.
    """
    moved: dict[int, Decimal] = {}
    tick = Decimal("0.000001")
    for indexes, number in racing_events(scenario):
        session = scenario.sessions[number]
        first_command = next(line for line in session.lines if line.direction == "<S")
        after = session.at(first_command.ms) + tick
        before = session.accept - len(indexes) * tick
        for position, index in enumerate(indexes):
            natural = Decimal(scenario.events[index]["Timestamp"]) < session.accept
            moved[index] = (after if natural else before) + position * tick
    return moved


# --- the wire ------------------------------------------------------------------------------------


def wav(data_bytes: int) -> bytes:
    """A PCM WAV as MixMonitor writes it (8 kHz, 16-bit, mono): 44-byte header + ``data_bytes``."""
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    return header + bytes(data_bytes)


# --- playing -------------------------------------------------------------------------------------


class ReplayClock:
    """The app's clock during a replay: the capture time of the delivery in progress."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def set(self, stamp: Decimal) -> None:
        self.now = epoch(stamp)

    def __call__(self) -> datetime:
        return self.now


class Diverged(AssertionError):
    """The app sent something else than the capture at this point."""


@dataclass
class _Connection:
    sock: socket.socket
    reader: Any
    closed_by_app: bool = False


@dataclass
class Player:
    """Plays deliveries into a running AMI service (via ``send_ami``) and a FastAGI server."""

    scenario: Scenario
    clock: ReplayClock
    agi_port: int
    send_ami: Callable[[Sequence[AmiMessage]], None]  # sends, and returns once the listener handled them
    agi_flush: Callable[[], None]  # waits until the FastAGI side's reports are written
    timeout_s: float = 5.0
    extra: list[str] = field(default_factory=list)  # commands the capture does not have, answered here
    on_response: Callable[[AmiMessage], None] | None = None  # what the app did that got this response
    channel_variables: dict[str, dict[str, str]] = field(default_factory=dict)
    _connections: dict[int, _Connection] = field(default_factory=dict)

    def play(self, deliveries: Iterable[Delivery]) -> None:
        batch: list[AmiMessage] = []
        try:
            for delivery in deliveries:
                if delivery.event is not None:  # the listener reads the event's Timestamp
                    batch.append(delivery.event)
                    continue
                self._send(batch)
                batch = []
                if delivery.line is None or delivery.line.direction == "A>":
                    self.clock.set(delivery.at)  # before the line: the app reads it after the reply
                if delivery.response is not None:
                    if self.on_response is not None:
                        self.on_response(delivery.response)
                    continue
                self._agi(delivery)
                self.clock.set(delivery.at)  # a command: set once the app sent it (it read the clock)
            self._send(batch)
        finally:
            for connection in self._connections.values():
                connection.sock.close()
            self._connections.clear()
        self.agi_flush()

    def _send(self, batch: list[AmiMessage]) -> None:
        if batch:
            self.send_ami(batch)

    def _agi(self, delivery: Delivery) -> None:
        assert delivery.session is not None
        session = self.scenario.sessions[delivery.session]
        line = delivery.line
        if line is None:
            sock = socket.create_connection(("127.0.0.1", self.agi_port), timeout=self.timeout_s)
            connection = _Connection(sock, sock.makefile("rb"))
            self._connections[delivery.session] = connection
            sock.sendall("".join(f"{item}\n" for item in [*session.env, ""]).encode("utf-8"))
            return
        connection = self._connections[delivery.session]
        where = f"{self.scenario.name}/{session.name} at {line.ms} ms"
        if line.direction == "A>":
            if not connection.closed_by_app:
                connection.sock.sendall(f"{line.text}\n".encode())
        elif line.direction == "<S":
            self._expect(connection, session, line.text, where)
        elif line.text.startswith("app closed"):
            self._expect_close(connection, session, where)
        elif line.text.startswith("Asterisk closed"):
            connection.sock.close()

    def _read(self, connection: _Connection, where: str) -> str | None:
        try:
            raw: bytes = connection.reader.readline()
        except TimeoutError as exc:
            raise Diverged(f"{where}: the app sent nothing within {self.timeout_s} s") from exc
        return None if not raw else raw.decode("utf-8").rstrip("\n")

    def _expect(self, connection: _Connection, session: AgiSession, expected: str, where: str) -> None:
        while True:
            got = self._read(connection, where)
            if got is None:
                raise Diverged(f"{where}: the app closed the connection; the capture has\n  <S {expected}")
            if got == expected:
                self._remember(session, got)
                return
            if _GET.match(got):
                self._answer_extra(connection, session, got, where)
                continue
            raise Diverged(
                f"{where}: the app diverged from the capture\n  captured: {expected}\n  sent:     {got}"
            )

    def _expect_close(self, connection: _Connection, session: AgiSession, where: str) -> None:
        while True:
            got = self._read(connection, where)
            if got is None:
                connection.closed_by_app = True
                self.agi_flush()  # what the session handed to the writer is written
                return
            if _GET.match(got):
                self._answer_extra(connection, session, got, where)
                continue
            raise Diverged(f"{where}: the capture has the app closing here, the app sent\n  {got}")

    def _answer_extra(self, connection: _Connection, session: AgiSession, got: str, where: str) -> None:
        match = _GET.match(got)
        assert match is not None
        value = self.channel_variables.get(session.channel, {}).get(match.group(1))
        reply = "200 result=0" if value is None else f"200 result=1 ({value})"
        self.extra.append(f"{where}: {got} -> {reply}")
        connection.sock.sendall(f"{reply}\n".encode())

    def _remember(self, session: AgiSession, command: str) -> None:
        match = _SET.match(command)
        if match:
            self.channel_variables.setdefault(session.channel, {})[match.group(1)] = match.group(2)


def deliveries_twice(scenario: Scenario) -> Iterator[list[Delivery]]:
    """The scenario's deliveries, then the same again (a replay of the whole capture)."""
    once = timeline(scenario)
    yield once
    yield once
